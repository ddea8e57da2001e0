"""The host's own error pages: HTML, whatever the progress feature does under its prefix."""
from flask import render_template_string

PAGE = """<!doctype html>
<html><head><title>{{ code }} {{ name }} - Example LMS</title></head>
<body><h1>{{ name }}</h1><p>{{ text }}</p><p><a href="/">Back to the courses</a></p></body></html>
"""
TEXTS = {
    403: "You may not see this page.",
    404: "We could not find that page.",
    405: "That page does not accept this kind of request.",
    413: "That upload is too large.",
    500: "Something went wrong on our side.",
}


def error_page(exc):
    """An HTML page for a routing error, an abort, or (as 500) an unhandled exception."""
    html = render_template_string(PAGE, code=exc.code, name=exc.name, text=TEXTS[exc.code])
    # Keep a 405's Allow header; Flask serves a str body as text/html.
    allow = [(key, value) for key, value in exc.get_headers() if key.lower() == "allow"]
    return html, exc.code, allow


def register_error_pages(app):
    """HTML pages for the statuses a browser may meet."""
    for code in TEXTS:
        app.register_error_handler(code, error_page)
