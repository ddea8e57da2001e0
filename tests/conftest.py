"""Fixtures: the app on mongomock (fast) or on a real MongoDB-wire server (SecantusDB)."""
import os
import uuid

import pytest

from progress_service import create_app
from progress_service.progress import mount_of

from .support import Lms, Api, SECRET, database_config, start_embedded_server

# Audits every command the service sends on the wire server for the shard key (issue 3, point 9).
pytest_plugins = ["tests.command_audit"]
pytest_plugins.append("tests.mongoose_driver")  # real Mongoose 8: fixtures mongoose, mongoose_db
pytest_plugins.append("tests.lrs")  # Ralph, a real xAPI LRS: fixtures ralph_lrs, own_ralph_lrs


def pytest_configure(config):
    """Register our markers."""
    config.addinivalue_line("markers", "wire: needs the real MongoDB-wire server")
    config.addinivalue_line("markers", "slow: slower end-to-end tests (gunicorn, restarts)")


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory):
    """One SecantusDB daemon for the session, over a real socket."""
    server = start_embedded_server(tmp_path_factory.mktemp("secantus"))
    yield server
    server.stop()


def _config(uri, **extra):
    """A testing config for create_app."""
    config = {"PROGRESS_ENV": "testing", "JWT_SECRET_KEY": SECRET,
              "PROGRESS_VAR_DIR": os.path.join(os.path.dirname(__file__), "..", "var", "test")}
    config.update(extra)
    return config


@pytest.fixture
def db_uri(request):
    """A fresh database: mongomock by default; `support.BOTH` / `support.WIRE` choose."""
    backend = getattr(request, "param", "mongomock")
    name = f"test_{uuid.uuid4().hex[:12]}"
    if backend == "wire":
        server = request.getfixturevalue("wire_server")
        return server.uri(name)
    return f"mongomock://localhost/{name}"


@pytest.fixture
def app_config():
    """Extra config for the app fixture; tests override it with their own fixture."""
    return {}


@pytest.fixture
def app(db_uri, app_config):
    """The standalone app on a fresh database."""
    database, disconnect = database_config(db_uri)
    application = create_app(_config(db_uri, **{**database, **app_config}))
    yield application
    mount_of(application).database.close()
    disconnect()


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def lms(app):
    """The host LMS's data (users, courses, lectures) written as the original app would.

    Its students are enrolled in its courses (contract section 8), whichever is created
    first; `lms.user(enrolled=False)` is a signed-in user who is not.
    """
    with app.app_context():
        yield Lms(mount_of(app).database.db())


@pytest.fixture
def api(client, lms):
    """HTTP calls as a student: `api.patch(course, lecture, body)`, with a fresh user."""
    return Api(client, lms.user())
