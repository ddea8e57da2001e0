"""/player/: the player module (progress-player.js) and a demo page that plays a course with it.

The module is a file of this package (player/progress-player.js), served as it is: a page
of any origin may import it (it carries no credential). The demo page is, like /docs, a
page for people; its policy lets it run only its own scripts and talk only to this app,
and play a video from anywhere (lectures' videos usually live on a CDN).
"""
from pathlib import Path

from flask import Blueprint, render_template_string, send_from_directory, url_for

bp = Blueprint("player", __name__)
FILES = Path(__file__).resolve().parent / "player"
MODULE = "progress-player.js"
POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "connect-src 'self'",
    "media-src * blob:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Course progress: player demo</title>
</head>
<body data-api="{{ api }}">
  <h1>Player demo</h1>
  <p>Query: <code>?course=&lt;id&gt;&amp;lectures=&lt;id&gt;,&lt;id&gt;&amp;video=&lt;url&gt;</code>;
     a Bearer token in the fragment (<code>#token=...</code>), else the <code>token</code> cookie.</p>
  <video id="video" controls muted playsinline width="640"></video>
  <ol id="lectures"></ol>
  <p id="status" role="status"></p>
  <script type="module" src="{{ url_for('player.asset', filename='demo.js') }}"></script>
</body>
</html>
"""


@bp.after_request
def policy(response):
    """Every /player/ answer carries the policy; the module may be imported from anywhere."""
    response.headers["Content-Security-Policy"] = POLICY
    return response


@bp.get("/player/", strict_slashes=False)
def demo():
    """The demo page, told where the API is."""
    return render_template_string(PAGE, api=url_for("progress.dashboard").rstrip("/"))


@bp.get("/player/<any('progress-player.js', 'demo.js'):filename>")
def asset(filename):
    """The module and the demo's script."""
    response = send_from_directory(FILES, filename, mimetype="text/javascript", max_age=300)
    if filename == MODULE:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response
