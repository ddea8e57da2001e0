"""The course-progress service.

Two parts, and importing one never imports the other:
- `progress_service.progress`: the extension a host LMS mounts (`Progress(app)`);
- `progress_service.standalone`: the app `gunicorn wsgi:app` serves (health, the /docs page,
  request logs, the CLI), built on the extension.
"""

__version__ = "0.2.0"


def create_app(config=None):
    """The standalone app (see progress_service.standalone.create_app)."""
    # Imported here, not at the top: a host importing the extension must not load the
    # standalone app's modules (its config, logging and error pages).
    from .standalone import create_app as create_standalone_app

    return create_standalone_app(config)
