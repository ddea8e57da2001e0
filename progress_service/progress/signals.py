"""Events for the host LMS (blinker), each sent once per real change after it is stored.

Receivers get `sender` None (the service has no Flask in it) and the keyword arguments
`user_id`, `course_id` (the host's ids) and `progress` (the stored record, a ProgressServiceRecord:
`completion_percentage`, `is_completed`, `completed_at`, `version`, `lecture_progress`, whose
entries have `lecture`, `is_completed`, `watch_time`, `last_watched`); `lecture_completed`
also gets `lecture_id`. The signals are the process's: a receiver serving several apps tells
them apart by `flask.current_app`.
"""
from blinker import Namespace

_events = Namespace()

lecture_completed = _events.signal("lecture-completed")
course_completed = _events.signal("course-completed")
progress_reset = _events.signal("progress-reset")
