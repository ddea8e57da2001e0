"""/docs: the human-readable API page of the standalone app (Swagger UI).

The assets come from the swagger-ui-bundle package, served from here: no CDN, so the page
works offline. It is the one place where the standalone app answers something other than JSON.
"""
from flask import Blueprint, render_template_string, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)
ASSETS = str(swagger_ui_path)
# The bundle's own index.html loads its petstore example; this page points at our document.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Course progress API</title>
  <link rel="stylesheet" href="{{ url_for('docs.asset', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png" href="{{ url_for('docs.asset', filename='favicon-32x32.png') }}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('docs.asset', filename='swagger-ui-bundle.js') }}"></script>
  <script src="{{ url_for('docs.asset', filename='swagger-ui-standalone-preset.js') }}"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: {{ spec_url | tojson }},
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      withCredentials: true,
      validatorUrl: null  // no call to the public validator: the page works offline
    });
  </script>
</body>
</html>
"""


@bp.get("/docs")
def page():
    """The API page, reading the document the progress blueprint serves."""
    spec_url = url_for("progress_openapi.openapi_document")
    return render_template_string(PAGE, spec_url=spec_url)


@bp.get("/docs/<path:filename>")
def asset(filename):
    """Swagger UI's scripts and styles from the installed package (404 JSON otherwise)."""
    return send_from_directory(ASSETS, filename, max_age=3600)
