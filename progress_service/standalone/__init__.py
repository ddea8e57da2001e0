"""The standalone app: `gunicorn wsgi:app`, `make run`, and the `flask --app wsgi progress` CLI.

It mounts the extension (progress_service.progress) and adds what only an app of its own
needs: settings from the environment, /healthz and /readyz, /metrics, the /docs page, the
player module and its demo page (/player/), JSON request logs, JSON errors everywhere, and
the operators' commands. A host LMS uses none of this.
"""
import logging

from flask import Flask

from ..progress import Progress
from ..progress.envelope import register_error_handlers
from . import config as settings, metrics
from .logs import register_request_logging

log = logging.getLogger("progress_service")


def create_app(config=None):
    """The standalone app: settings from the environment, `config` overriding them."""
    app = Flask("progress_service", static_folder=None)
    load_config(app, config)
    register_extensions(app)
    register_health(app)
    register_metrics(app)
    register_docs(app)
    register_player(app)
    register_errorhandlers(app)
    register_commands(app)
    register_logging(app)
    register_security_headers(app)
    return app


def load_config(app, overrides):
    """Environment, then overrides; refuse to start without a usable secret."""
    values = settings.from_env()
    values.update(overrides or {})
    settings.resolve_secret(values)
    settings.pin_algorithm(values)
    app.config.update(values)
    app.config["MAX_CONTENT_LENGTH"] = int(app.config.get("PROGRESS_MAX_BODY_BYTES", 64 * 1024))
    if values.get("PROGRESS_DEV_SECRET_USED"):
        log.warning("JWT_SECRET_KEY is unset: using the development key in %s/dev-secret",
                    values.get("PROGRESS_VAR_DIR", "var"))


def register_extensions(app):
    """Mount the progress feature on our own app, counting into the app's own metrics registry."""
    Progress(app, metrics=metrics.registry(app))


def register_metrics(app):
    """GET /metrics for Prometheus, unless PROGRESS_METRICS=off (then it is a JSON 404)."""
    if metrics.registry(app) is not None:
        app.register_blueprint(metrics.bp)


def register_health(app):
    """Liveness and readiness for the process manager and the proxy."""
    from .health import bp as health_bp

    app.register_blueprint(health_bp)


def register_docs(app):
    """Standalone: the human-readable API page at /docs, its assets bundled (no CDN)."""
    from .docs import bp as docs_bp

    app.register_blueprint(docs_bp)


def register_player(app):
    """Standalone: the player module and its demo page at /player/ (docs/player.md)."""
    from .player import bp as player_bp

    app.register_blueprint(player_bp)


def register_errorhandlers(app):
    """Standalone: every error in the app, routing errors included, is the JSON envelope."""
    register_error_handlers(app)


def register_commands(app):
    """`flask --app wsgi progress ...`"""
    from .cli import progress_cli

    app.cli.add_command(progress_cli)


def register_logging(app):
    """Standalone: one JSON line per request on stdout, with an X-Request-ID (logs.py)."""
    register_request_logging(app)


def register_security_headers(app):
    """Standalone: no content sniffing on any response (a host sets its own headers)."""

    @app.after_request
    def no_sniffing(response):
        """X-Content-Type-Options: nosniff, so a browser never guesses another type."""
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
