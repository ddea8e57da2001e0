"""Events for the host LMS (blinker), each sent once per real change after it is stored.

Receivers get `sender` None (the service has no Flask in it) and keyword arguments. A
record's events get `user_id`, `course_id` (the host's ids) and `progress` (the stored record,
a ProgressServiceRecord: `completion_percentage`, `is_completed`, `completed_at`, `version`,
`lecture_progress`, whose entries have `lecture`, `is_completed`, `watch_time`,
`last_watched`); `lecture_completed` also gets `lecture_id`. An erase (contract section 13)
sends `user_erased` with `user_id`, or `course_erased` with `course_id`, and both with
`records` and `statements` (how many were deleted; 0 when erasing again). The signals are the
process's: a receiver serving several apps tells them apart by `flask.current_app`.
"""
import logging

from blinker import Namespace

log = logging.getLogger("progress_service")
_events = Namespace()

lecture_completed = _events.signal("lecture-completed")
course_completed = _events.signal("course-completed")
progress_reset = _events.signal("progress-reset")
user_erased = _events.signal("user-erased")
course_erased = _events.signal("course-erased")


def send(signal, **kwargs):
    """Send an event; a failing receiver is logged, never turned into a failure of ours.

    The change is already stored: answering 500 would make the client retry a change that
    succeeded, and the host's bug is theirs to see in the log.
    """
    for receiver in signal.receivers_for(None):
        try:
            receiver(None, **kwargs)
        except Exception:  # noqa: BLE001  (any receiver bug)
            log.exception("a receiver of %s failed", signal.name)
