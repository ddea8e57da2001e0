// The demo page's script (/player/): lists a course's lectures with their progress and plays
// one with progress-player.js. Query: course, lectures (ids, comma-separated: a course without
// a record yet has no list to read), video (the clip every lecture plays), lecture (the one to
// start with), heartbeat (seconds), rate (playback speed). A Bearer token may come in the
// fragment (#token=...), which never reaches a server log; without one, the cookie is used.
import { trackProgress } from "./progress-player.js";

const query = new URLSearchParams(location.search);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const api = document.body.dataset.api;
const course = query.get("course");
const video = document.getElementById("video");
const list = document.getElementById("lectures");
const status = document.getElementById("status");
const demo = { player: null, record: null };
window.progressDemo = demo;  // for people poking at it in the console, and for the tests

/** The caller's record of the course, or null when there is none yet. */
async function record() {
  const response = await fetch(`${api}/${course}`, {
    credentials: token ? "omit" : "include",
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET ${response.status}`);
  return (await response.json()).data;
}

/** Show each lecture: watched seconds, position, done or not; a button plays it. */
function show(lectures) {
  list.replaceChildren(...lectures.map((row) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = `Play ${row.lecture}`;
    button.addEventListener("click", () => play(row.lecture));
    item.append(button, ` watched ${row.watchedSeconds ?? 0} s, at ${row.watchTime ?? 0} s` +
      (row.isCompleted ? ", completed" : ""));
    return item;
  }));
}

/** Read the record again and show it. */
async function refresh() {
  demo.record = await record();
  const ids = (query.get("lectures") || "").split(",").filter(Boolean);
  const rows = demo.record ? demo.record.lectureProgress : ids.map((lecture) => ({ lecture }));
  show(rows);
  status.textContent = demo.record ? `${demo.record.completionPercentage} % of the course` : "no progress yet";
  return demo.record;
}
demo.refresh = refresh;

/** Play one lecture from where the student left it. */
function play(lecture) {
  demo.player?.destroy();
  const heartbeat = Number(query.get("heartbeat"));
  demo.player = trackProgress(video, {
    api, course, lecture, token,
    ...(heartbeat > 0 ? { heartbeatMs: heartbeat * 1000 } : {}),
    onError: (problem) => { status.textContent = `a report was refused: ${problem}`; },
  });
  const row = demo.record?.lectureProgress.find((item) => item.lecture === lecture);
  const rate = Number(query.get("rate")) || 1;
  video.addEventListener("loadedmetadata", () => {
    if (row && !row.isCompleted && row.watchTime < video.duration) video.currentTime = row.watchTime;
    video.defaultPlaybackRate = video.playbackRate = rate;
  }, { once: true });
  video.src = query.get("video");
  video.dataset.lecture = lecture;
}

refresh().then(() => {
  const first = query.get("lecture") || demo.record?.resume?.lecture
    || (query.get("lectures") || "").split(",").filter(Boolean)[0];
  if (first) play(first);
}).catch((error) => { status.textContent = String(error); });
