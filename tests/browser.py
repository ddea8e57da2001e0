"""A real browser for the tests: Debian's Chromium driven by Playwright, a video clip, pages.

- `chromium` (fixture, per module): a headless Chromium, the system's (/usr/bin/chromium, which
  `make test` installs with scripts/system_deps.sh); Playwright never downloads a browser here.
- `clip` (fixture, per session): a short WebM/VP8 test picture made by ffmpeg (`testsrc`), no
  sound: (path, duration in seconds).
- `StaticSite`: files served over HTTP from a thread, with byte ranges (a <video> asks for
  them), on a host of one's choice: the clip, or a page of another origin.
- `served_app(tmp_path, env)`: the standalone app under gunicorn (tests/serving.py) on a
  SecantusDB of its own, which a test may freeze (SIGSTOP) without touching anyone else's.
- `open_page(context, url)`: a page whose console errors fail the test that opened it.
"""
import re
import shutil
import subprocess
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymongo
import pytest

from .serving import Gunicorn
from .support import EmbeddedServer, free_port

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required"]
CLIP_SECONDS = 6
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def chromium_executable():
    """The system's Chromium, or a failure saying how to get it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (scripts/system_deps.sh)")
    return found


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium for the module's tests (Playwright's own browsers are never used)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_FLAGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """(path, seconds): a WebM/VP8 clip of ffmpeg's test picture, a keyframe every second."""
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        pytest.fail("ffmpeg is not installed: `make test` installs it (scripts/system_deps.sh)")
    path = tmp_path_factory.mktemp("clip") / "clip.webm"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=duration={CLIP_SECONDS}:size=160x120:rate=10",
                    "-c:v", "libvpx", "-b:v", "100k", "-g", "10", "-an", "-y", str(path)],
                   check=True, timeout=120)
    return path, CLIP_SECONDS


def open_page(context, url, errors=None):
    """A new page at `url`; uncaught errors of its scripts are collected in `errors`."""
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page


class StaticSite:
    """Files served from memory over HTTP on `host`, GET and HEAD, honouring one byte range."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.files = {}
        self.requests = []
        self.server = None

    def add(self, path, content, content_type):
        """Serve `content` (bytes or str) at `path`."""
        self.files[path] = (content.encode() if isinstance(content, str) else content, content_type)
        return f"{self.url}{path}" if self.server else path

    @property
    def url(self):
        """http://host:port"""
        return f"http://{self.host}:{self.server.server_address[1]}"

    def __enter__(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                self.answer(body=False)

            def do_GET(self):
                self.answer(body=True)

            def answer(self, body):
                site.requests.append((self.command, self.path))
                found = site.files.get(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                content, content_type = found
                start, end, status = 0, len(content) - 1, 200
                wanted = RANGE.match(self.headers.get("Range", ""))
                if wanted and (wanted[1] or wanted[2]):
                    if wanted[1]:
                        start, end = int(wanted[1]), min(int(wanted[2] or end), end)
                    else:
                        start = max(0, len(content) - int(wanted[2]))
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(content)}")
                self.end_headers()
                if body:
                    self.wfile.write(content[start:end + 1])

            def log_message(self, *args):
                """Quiet: the test looks at `site.requests`."""

        self.server = ThreadingHTTPServer((self.host, free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False


@contextmanager
def served_app(tmp_path, env=None, allow_own_origin=True):
    """(gunicorn, db, daemon): the standalone app (two workers) on a SecantusDB of its own.

    `allow_own_origin`: its own origin is in CLIENT_URL, so its pages' cookie writes pass
    the origin check (with any origins `env` names).
    """
    daemon = EmbeddedServer(tmp_path / "db").start()
    client = pymongo.MongoClient(daemon.uri(), serverSelectionTimeoutMS=5000, tz_aware=True)
    server = Gunicorn(tmp_path, daemon.uri("player"), workers=2, env=env)
    if allow_own_origin:
        server.env["CLIENT_URL"] = ",".join(filter(None, [server.env.get("CLIENT_URL"), server.url]))
    try:
        with server:
            yield server, client["player"], daemon
    finally:
        client.close()
        daemon.stop()


def module_source():
    """The player module's text, as the standalone app serves it."""
    root = Path(__file__).resolve().parent.parent
    return (root / "progress_service" / "standalone" / "player" / "progress-player.js").read_text()
