"""/healthz (the process is up) and /readyz (the database answers)."""
from flask import Blueprint, current_app

from .db import ping
from .errors import UNAVAILABLE, failure, success

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the process runs, even with the database down."""
    return success({"alive": True})


@bp.get("/readyz")
def readyz():
    """200 when the database answers, else 503."""
    try:
        ping(current_app.extensions["progress"].db_alias)
    except UNAVAILABLE:
        return failure(503, "The database is unavailable", headers={"Retry-After": "5"})
    return success({"ready": True})
