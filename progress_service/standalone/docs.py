"""/docs: the human-readable API page of the standalone app (Swagger UI).

The assets come from the swagger-ui-bundle package, served from here: no CDN, so the page
works offline. Only the four files the page loads are served, and the page carries a
Content-Security-Policy that lets it run nothing but those scripts: its own set-up is a
script file too, reading the document's URL from a data attribute. With /player/ (player.py),
it is where the standalone app answers something other than JSON.
"""
from flask import Blueprint, current_app, render_template_string, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound

bp = Blueprint("docs", __name__)
ASSETS = str(swagger_ui_path)
# What the page loads from the bundle; nothing else of its directory is served.
SERVED = frozenset({"swagger-ui.css", "favicon-32x32.png", "swagger-ui-bundle.js",
                    "swagger-ui-standalone-preset.js"})
POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    # Swagger UI sets style attributes from its scripts, and draws icons as data: images.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Course progress API</title>
  <link rel="stylesheet" href="{{ url_for('docs.asset', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png" href="{{ url_for('docs.asset', filename='favicon-32x32.png') }}">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{{ spec_url }}"></div>
  <script src="{{ url_for('docs.asset', filename='swagger-ui-bundle.js') }}"></script>
  <script src="{{ url_for('docs.asset', filename='swagger-ui-standalone-preset.js') }}"></script>
  <script src="{{ url_for('docs.setup') }}"></script>
</body>
</html>
"""
# The bundle's own index.html loads its petstore example; this points Swagger UI at ours.
SETUP = """window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  withCredentials: true,
  validatorUrl: null  // no call to the public validator: the page works offline
});
"""


@bp.after_request
def content_security_policy(response):
    """Every /docs response carries the policy (the page and its assets alike)."""
    response.headers["Content-Security-Policy"] = POLICY
    return response


@bp.get("/docs")
def page():
    """The API page, reading the document the progress blueprint serves."""
    spec_url = url_for("progress_openapi.openapi_document")
    return render_template_string(PAGE, spec_url=spec_url)


@bp.get("/docs/setup.js")
def setup():
    """The page's set-up script (a file, so the policy needs no inline script)."""
    return current_app.response_class(SETUP, mimetype="text/javascript")


@bp.get("/docs/<path:filename>")
def asset(filename):
    """One of the page's Swagger UI files from the installed package (404 JSON otherwise)."""
    if filename not in SERVED:
        raise NotFound()
    return send_from_directory(ASSETS, filename, max_age=3600)
