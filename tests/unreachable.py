"""Fake xAPI endpoints for the "LRS unreachable" tests: connection refused, or no answer ever."""
import socket
import threading
from contextlib import contextmanager


@contextmanager
def refused_endpoint():
    """An xAPI endpoint URL (`http://127.0.0.1:PORT/xAPI/`) whose connections are refused.

    The port is bound but never listened on: Linux answers a connect with RST (ECONNREFUSED),
    and nobody else can take the port while the block runs (a merely free port could be).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/xAPI/"


class SilentServer:
    """A TCP server that accepts every connection and never answers; `endpoint`, `accepted`."""

    def __init__(self):
        """Listen on a free port and start accepting in a thread."""
        self.listener = socket.create_server(("127.0.0.1", 0))
        # A short accept timeout lets the thread notice close() without racing on the socket.
        self.listener.settimeout(0.05)
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}/xAPI/"
        self.connections = []
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-lrs", daemon=True)
        self._thread.start()

    @property
    def accepted(self):
        """How many connections were accepted so far."""
        return len(self.connections)

    def _accept(self):
        """Accept connections and keep them open, unread, until close()."""
        while not self._closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        """Stop accepting and close every connection (the client then sees its socket closed)."""
        self._closing.set()
        self._thread.join(timeout=5)
        self.listener.close()
        for connection in self.connections:
            connection.close()


@contextmanager
def silent_endpoint():
    """A SilentServer for the block: its `endpoint` accepts connections and never answers."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()
