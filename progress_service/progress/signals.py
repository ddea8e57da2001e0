"""Events for the host LMS (blinker), each sent once per real change after it is stored.

Receivers get `sender` None (the service has no Flask in it) and the keyword
arguments `user_id`, `course_id` (ObjectIds) and `progress` (the stored CourseProgress);
`lecture_completed` also gets `lecture_id`.
"""
from blinker import Namespace

_events = Namespace()

lecture_completed = _events.signal("lecture-completed")
course_completed = _events.signal("course-completed")
progress_reset = _events.signal("progress-reset")
