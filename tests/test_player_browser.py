"""The player module in a real browser (contract section 14): headless Chromium plays a real
<video> on the standalone app's demo page, against the service under gunicorn on a SecantusDB
of this module's own, with PROGRESS_COMPLETE_BY=watched.

Each test checks what the page did and what the database holds: playing to the end completes
the lecture; seeking to the end completes nothing; a closed tab still saves its position (by
beacon with the cookie, by a keepalive fetch with a token); a frozen database loses and
rewinds nothing; a page of another site cannot write.
"""
import json
import signal
import time
from urllib.parse import urlencode

import pytest

from .browser import StaticSite, chromium, clip, module_source, open_page, served_app  # noqa: F401 (fixtures)
from .support import PREFIX, Lms, make_token

pytestmark = [pytest.mark.wire, pytest.mark.slow]
WATCHED = {"PROGRESS_COMPLETE_BY": "watched"}
VIDEO = "document.getElementById('video')"


@pytest.fixture(scope="module")
def world(tmp_path_factory, clip):
    """The served app, its database, and a site serving the clip (another origin, as a CDN)."""
    path, seconds = clip
    with served_app(tmp_path_factory.mktemp("player"), WATCHED) as (server, db, daemon), \
            StaticSite("127.0.0.1") as media:
        media.add("/clip.webm", path.read_bytes(), "video/webm")
        yield Lms(db), server, daemon, media, seconds


@pytest.fixture
def lesson(world):
    """A student and a one-lecture course whose lecture lasts as long as the clip."""
    lms, server, daemon, media, seconds = world
    student = lms.user()
    course, [lecture] = lms.course(1, durations=[seconds])
    return student, course, lecture


def demo_url(world, lesson, token=None, **knobs):
    """The demo page for the lesson, playing the clip; a token goes in the fragment."""
    lms, server, _, media, _ = world
    _, course, lecture = lesson
    query = urlencode({"course": str(course), "lectures": str(lecture), "video": f"{media.url}/clip.webm", **knobs})
    return f"{server.url}/player/?{query}" + (f"#token={token}" if token else "")


def signed_in(chromium, world, student):
    """A browser context holding the LMS's HTTP-only cookie for the service's site."""
    context = chromium.new_context()
    context.add_cookies([{"name": "token", "value": make_token(student), "url": world[1].url,
                          "httpOnly": True, "sameSite": "Lax"}])
    return context


def ready(page):
    """Wait for the demo's player and the clip's metadata."""
    page.wait_for_function(f"() => window.progressDemo && window.progressDemo.player && {VIDEO}.readyState >= 1")


def entry(world, lesson, wait_for=None, timeout=20):
    """The stored entry of the lesson's lecture (polling until `wait_for(entry)`, if given)."""
    lms = world[0]
    student, course, _ = lesson
    deadline = time.monotonic() + timeout
    while True:
        record = lms.record(student, course)
        found = record["lectureProgress"][0] if record else None
        if wait_for is None or (found is not None and wait_for(found)) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def writes(world, lesson, since=0):
    """(method, path tail, status) of the service's log lines for the lesson's course, in order."""
    course = str(lesson[1])
    return [(line["method"], line["path"].split(course, 1)[1], line["status"])
            for line in world[1].log_lines()[since:] if course in line.get("path", "")
            and line.get("method") != "GET"]


def queue_empty(page):
    """Wait until the player's localStorage queue is empty (everything acknowledged)."""
    page.wait_for_function("() => Object.keys(localStorage).filter(k => k.startsWith('progress-player:')).length === 0",
                           timeout=30000)


def watched(stored):
    """The stored union's length in seconds."""
    return sum(end - start for start, end in stored.get("played", []))


def test_playing_to_the_end_completes_the_lecture_with_watched_seconds_near_the_duration(chromium, world, lesson):
    """Heartbeats while playing, a report at the end: completed, about 6 s watched, one interval."""
    errors = []
    context = signed_in(chromium, world, lesson[0])
    page = open_page(context, demo_url(world, lesson, heartbeat=1, rate=2), errors)
    ready(page)
    page.evaluate(f"() => {VIDEO}.play()")
    page.wait_for_function(f"() => {VIDEO}.ended", timeout=30000)
    queue_empty(page)
    stored = entry(world, lesson, wait_for=lambda e: e["isCompleted"])
    seconds = world[4]
    assert stored["isCompleted"] is True and stored["watchTime"] == pytest.approx(seconds, abs=0.1)
    assert len(stored["played"]) == 1 and watched(stored) == pytest.approx(seconds, abs=0.3)
    shown = page.evaluate("() => window.progressDemo.refresh()")
    assert shown["lectureProgress"][0]["watchedSeconds"] == pytest.approx(seconds, abs=0.3)
    assert shown["isCompleted"] is True
    heartbeats = [w for w in writes(world, lesson) if w[0] == "PATCH" and w[2] == 204]
    assert len(heartbeats) >= 2, writes(world, lesson)
    assert errors == []
    context.close()


def test_seeking_to_the_end_without_watching_does_not_complete(chromium, world, lesson):
    """Half a second played, then a seek to the last 0.3 s: the position is the end, the lecture open."""
    errors = []
    context = signed_in(chromium, world, lesson[0])
    page = open_page(context, demo_url(world, lesson, heartbeat=1, rate=2), errors)
    ready(page)
    page.evaluate(f"() => {VIDEO}.play()")
    page.wait_for_function(f"() => {VIDEO}.currentTime > 0.5")
    page.evaluate(f"() => {{ {VIDEO}.currentTime = {VIDEO}.duration - 0.3; }}")
    page.wait_for_function(f"() => {VIDEO}.ended", timeout=30000)
    queue_empty(page)
    stored = entry(world, lesson)
    assert stored["watchTime"] == pytest.approx(world[4], abs=0.1) and stored["isCompleted"] is False
    # What was played before the seek counts up to the last `timeupdate` seen (about every
    # 250 ms, less often on a loaded machine): somewhat under the half second, never the video.
    assert 0 < watched(stored) < 2.5 and len(stored["played"]) in (1, 2)
    assert page.evaluate("() => window.progressDemo.refresh()")["completionPercentage"] == 0
    assert errors == []
    context.close()


@pytest.mark.parametrize("by", ["cookie", "token"])
def test_closing_the_tab_mid_play_stores_the_position(chromium, world, lesson, by):
    """No heartbeat has gone yet; the tab closes: the cookie's beacon (a POST) or the token's
    keepalive fetch (a PATCH) stores where the video was and what was played."""
    errors = []
    token = make_token(lesson[0]) if by == "token" else None
    context = signed_in(chromium, world, lesson[0]) if by == "cookie" else chromium.new_context()
    page = open_page(context, demo_url(world, lesson, token=token, heartbeat=60, rate=1), errors)
    ready(page)
    page.evaluate(f"() => {VIDEO}.play()")
    page.wait_for_function(f"() => {VIDEO}.currentTime > 2", timeout=20000)
    assert entry(world, lesson) is None, "nothing was written before the tab closed"
    at_close = page.evaluate(f"() => {VIDEO}.currentTime")
    assert errors == []
    page.close(run_before_unload=True)
    stored = entry(world, lesson, wait_for=lambda e: e["watchTime"] > 0)
    assert stored is not None, "the position of the closed tab never arrived"
    assert at_close <= stored["watchTime"] < at_close + 1
    assert watched(stored) == pytest.approx(stored["watchTime"], abs=0.5)
    expected = ("POST", 200) if by == "cookie" else ("PATCH", 204)
    assert [(method, status) for method, _, status in writes(world, lesson)][:1] == [expected]
    context.close()


def test_a_frozen_database_loses_and_rewinds_nothing(chromium, world, lesson):
    """The database stops answering (SIGSTOP) for 8 s of playback: heartbeats fail (503 with
    Retry-After), the queue holds them; it answers again (SIGCONT): the queue is replayed
    through the batch endpoint and the stored position is the last one, everything played kept."""
    lms, server, daemon, _, _ = world
    errors = []
    context = signed_in(chromium, world, lesson[0])
    page = open_page(context, demo_url(world, lesson, heartbeat=1, rate=0.5), errors)
    ready(page)
    page.evaluate(f"() => {VIDEO}.play()")
    entry(world, lesson, wait_for=lambda e: e["watchTime"] > 0)
    daemon.process.send_signal(signal.SIGSTOP)
    try:
        page.wait_for_timeout(8000)
        page.evaluate(f"() => {VIDEO}.pause()")
        final = page.evaluate(f"() => {VIDEO}.currentTime")
        waiting = page.evaluate("() => Object.values(localStorage).map(JSON.parse)")
    finally:
        daemon.process.send_signal(signal.SIGCONT)
    [queued] = [entries for entries in waiting if entries]
    assert queued[str(lesson[2])]["watchTime"] == pytest.approx(final, abs=0.001)
    queue_empty(page)
    stored = entry(world, lesson)
    assert stored["watchTime"] == pytest.approx(final, abs=0.001), "rewound or lost the last position"
    assert len(stored["played"]) == 1 and stored["played"][0][0] < 0.1  # from where `playing` saw it
    assert stored["played"][0][1] == pytest.approx(final, abs=0.001), "played seconds lost"
    log = writes(world, lesson)
    assert ("PATCH", f"/lectures/{lesson[2]}", 503) in log, log
    failed = log.index(("PATCH", f"/lectures/{lesson[2]}", 503))
    assert ("PATCH", "/lectures", 204) in log[failed:], f"no batch replay after the outage: {log}"
    assert errors == []
    context.close()


FOREIGN_PAGE = """<!DOCTYPE html>
<html><body>
<video id="video" muted src="/clip.webm"></video>
<script type="module">
import { trackProgress } from "/progress-player.js";
const api = %(api)s, course = %(course)s, lecture = %(lecture)s;
const video = document.getElementById("video");
const results = window.results = [];
trackProgress(video, { api, course, lecture, heartbeatMs: 300 });
await video.play();
const url = `${api}/${course}/lectures/${lecture}`;
const body = JSON.stringify({ isCompleted: true, watchTime: 99 });
results.push(navigator.sendBeacon(url, new Blob([body], { type: "text/plain" })) ? "beacon queued" : "beacon refused");
for (const method of ["PATCH", "POST"]) {
  try {
    const response = await fetch(url, { method, body, credentials: "include",
                                        headers: { "Content-Type": "application/json" } });
    results.push(`${method} ${response.status}`);
  } catch (error) {
    results.push(`${method} blocked`);
  }
}
window.done = true;
</script>
</body></html>
"""


def test_a_page_of_another_site_cannot_write(chromium, world, lesson, clip):
    """The student is signed in (the cookie is in the browser); a page on http://localhost:<p>
    (another site than the service's 127.0.0.1) plays with the module and tries a beacon and
    fetches with credentials: nothing reaches the record."""
    lms, server, _, _, _ = world
    student, course, lecture = lesson
    token = make_token(student)
    assert server.call("PATCH", f"{course}/lectures/{lecture}", token=token, body={"watchTime": 3}).status_code == 200
    before = lms.record(student, course)
    context = signed_in(chromium, world, student)
    with StaticSite("localhost") as foreign:
        foreign.add("/clip.webm", clip[0].read_bytes(), "video/webm")
        foreign.add("/progress-player.js", module_source(), "text/javascript")
        foreign.add("/page.html", FOREIGN_PAGE % {"api": json.dumps(server.url + PREFIX), "course": json.dumps(str(course)),
                                                  "lecture": json.dumps(str(lecture))}, "text/html")
        since = len(server.log_lines())
        page = open_page(context, f"{foreign.url}/page.html")
        page.wait_for_function("() => window.done === true", timeout=20000)
        page.wait_for_timeout(1500)  # the module's heartbeats and the beacon have time to land
        results = page.evaluate("() => window.results")
    assert lms.record(student, course) == before
    assert results[0] == "beacon queued" and results[1:] == ["PATCH blocked", "POST blocked"], results
    refused = writes(world, lesson, since)
    assert refused and all(status in (401, 403) for method, _, status in refused if method != "OPTIONS"), refused
    assert any(method == "POST" for method, _, _ in refused), "the beacon reached the service and was refused"
    context.close()
