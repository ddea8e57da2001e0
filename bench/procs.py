"""Child processes of a benchmark run, and what /proc says about them."""
import os
import signal
import socket
import subprocess
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessGroup:
    """Starts long-lived children and stops every one of them on exit, error or Ctrl-C.

    Each child gets its own session, so a terminal's Ctrl-C reaches only this script (which
    then stops the children in order) and a child's own descendants (gunicorn's workers) are
    stopped with it by signalling its process group, which is identified by the child's pid.
    """

    def __init__(self):
        self._children = []

    def __enter__(self):
        # SIGTERM (e.g. from `timeout` or a CI runner) must run the same cleanup as Ctrl-C, and
        # SIGINT must raise even when a non-interactive shell started us with it ignored.
        self._previous = {sig: signal.signal(sig, _raise_keyboard_interrupt)
                          for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc):
        for sig in self._previous:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        for proc in reversed(self._children):
            self.stop(proc)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    def start(self, cmd, log_path, **kwargs):
        """Start `cmd` with stdout and stderr in `log_path`; return its Popen."""
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self._children.append(proc)
        return proc

    def stop(self, proc, grace=10.0):
        """SIGTERM the child's process group, then SIGKILL it if it is still there after `grace`."""
        if proc not in self._children:
            return
        self._children.remove(proc)
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        # Workers that outlived their master (they should not) are in the same group.
        _signal_group(proc.pid, signal.SIGKILL)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def children_of(pid):
    """Pids whose parent is `pid` (gunicorn's workers are the master's children)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat and int(stat[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def cpu_seconds(pid):
    """User + system CPU time the process has used so far (all its threads), or None if gone.

    In clock ticks (10 ms here): fine over thousands of requests, too coarse for a scenario
    that serves twenty; thread_cpu_seconds is exact.
    """
    stat = _read_stat(pid)
    if stat is None:
        return None
    # Fields 14 and 15 of /proc/<pid>/stat; `stat` starts at field 3 (after "pid (comm)").
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid):
    """{thread id: CPU seconds} of each live thread of the process, to the nanosecond.

    From /proc/<pid>/task/<tid>/schedstat (its first field is the time the thread has run,
    in ns). A thread that exits between two readings takes its time since the first with it:
    gunicorn's workers keep their threads (the sync worker's, gthread's pool, pymongo's
    monitors, the stats flusher). None when the process is gone or the kernel has no
    schedstat (then cpu_seconds is used).
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return None
    found = {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as stat:
                found[int(tid)] = int(stat.read().split()[0]) / 1e9
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited meanwhile
        except (OSError, ValueError, IndexError):
            return None
    return found


def machine_busy_seconds():
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def peak_rss_mb(pid):
    """VmHWM (peak resident set size) of the process in MiB, or None if gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _read_stat(pid):
    """Fields 3.. of /proc/<pid>/stat (state, ppid, ...), split after the command name."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2:].split()


def wait_until(check, timeout, errors=(OSError,), interval=0.2, what="condition"):
    """Call `check` until it returns a truthy value; raise TimeoutError after `timeout` s.

    `errors` are what `check` raises while the thing is not up yet (connection refused...);
    anything else propagates at once.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except errors as error:
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error!r})")


def tail(path, lines=30):
    """The last `lines` lines of a log file, for error messages."""
    try:
        with open(path, errors="replace") as log:
            return "".join(log.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


PROBLEM_MARKERS = ("Traceback", "[ERROR]", "[CRITICAL]", "WORKER TIMEOUT", "Worker exiting",
                   "was sent SIGKILL", "Exception")


def log_problems(path, keep=5):
    """Lines of a gunicorn log that say something went wrong: {"count", "examples"}."""
    try:
        with open(path, errors="replace") as log:
            lines = [line.rstrip() for line in log if any(m in line for m in PROBLEM_MARKERS)]
    except FileNotFoundError:
        return {"count": 0, "examples": []}
    return {"count": len(lines), "examples": lines[:keep]}
