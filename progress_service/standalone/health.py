"""/healthz (the process is up) and /readyz (the database answers and writes can be served)."""
from flask import Blueprint, current_app

from ..progress import mount_of
from ..progress.envelope import UNAVAILABLE, failure, success

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the process runs, even with the database down."""
    return success({"alive": True})


@bp.get("/readyz")
def readyz():
    """200 when the database answers and our unique index is in place, else 503 saying why."""
    database = mount_of(current_app).database
    try:
        database.ping()
        database.ensure_indexes()
    except UNAVAILABLE:
        return failure(503, "The database is unavailable", headers={"Retry-After": "5"})
    if database.indexes.problem:
        # The service's own words: /readyz answers anyone, the database's text goes to the log.
        return failure(503, f"Writes are refused: {database.indexes.problem.reason}", headers={"Retry-After": "10"})
    return success({"ready": True})
