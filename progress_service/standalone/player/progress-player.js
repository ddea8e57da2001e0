// progress-player.js: connects an HTML5 <video> to the course-progress API. No dependencies,
// no build step: an ES module for any page. docs/player.md describes it.
//
//   import { trackProgress } from "/player/progress-player.js";
//   trackProgress(video, { course: "<courseId>", lecture: "<lectureId>" });
//
// While the video plays it reports every 15 s, and on pause, seek, end and page hide: the
// position (watchTime), the intervals actually played since the last report (seeks are not
// played), and `at`, when the position was seen. Every report goes into a queue kept in
// localStorage first and leaves it once the service acknowledged it, so a report that fails
// (offline, 409, 503: Retry-After honoured) is sent again later, through the batch endpoint.
// Sending one again is harmless: the service keeps the union of played intervals and never
// lets an older `at` move a newer position.

const DEFAULTS = {
  api: "/api/v1/progress",  // the API's base URL (another origin of the same site works too)
  token: null,              // a Bearer token, or a function returning one; null: the cookie
  user: "",                 // the student's id: keys the queue, so a shared browser never
                            // sends one student's queue with another's credentials
  heartbeatMs: 15000,
  storage: globalThis.localStorage,
  onError: null,            // called with (status or Error, report) for a report dropped
};
const MAX_INTERVALS = 50;    // per lecture in one request (the service's limit)
const MAX_BATCH = 200;       // lectures in one batch request
const RETRY_MS = [1000, 2000, 5000, 10000, 30000, 60000];
const TIMEOUT_MS = 20000;

/** Seconds to the millisecond, as reported. */
const ms = (seconds) => Math.round(seconds * 1000) / 1000;

/** The union of intervals, sorted, touching ones joined. */
function union(intervals) {
  const sorted = intervals.filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Reports waiting for the service, one coalesced entry per lecture, kept in storage. */
class Queue {
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
  }

  read() {
    try {
      return JSON.parse(this.storage?.getItem(this.key) || "{}");
    } catch {
      return {};
    }
  }

  write(entries) {
    try {
      if (Object.keys(entries).length) this.storage?.setItem(this.key, JSON.stringify(entries));
      else this.storage?.removeItem(this.key);
    } catch {
      // Storage full or refused (private mode): the report still goes out, just unbacked.
    }
  }

  /** Add a report: intervals join the lecture's union, the latest `at` gives the position. */
  add(report) {
    const entries = this.read();
    const had = entries[report.lecture];
    const entry = had && had.at > report.at ? { ...had } : { ...had, ...report };
    entry.played = union([...(had?.played || []), ...report.played]);
    entry.seq = (had?.seq || 0) + 1;
    entries[report.lecture] = entry;
    this.write(entries);
    return entry;
  }

  /** Forget what was sent: entries unchanged since (a newer report joined in: sent again),
   * less the intervals still waiting when more than MAX_INTERVALS were; `whole`: all of it. */
  done(sent, whole = false) {
    const entries = this.read();
    for (const item of sent) {
      const entry = entries[item.lecture];
      if (!entry || entry.seq !== item.seq) continue;
      const rest = whole ? [] : entry.played.slice(item.played.length);
      if (rest.length) entries[item.lecture] = { ...entry, played: rest };
      else delete entries[item.lecture];
    }
    this.write(entries);
  }
}

export class ProgressPlayer {
  /** Start reporting what `video` plays for one lecture of one course. */
  constructor(video, options) {
    this.video = video;
    this.options = { ...DEFAULTS, ...options };
    if (!this.options.course || !this.options.lecture) throw new TypeError("course and lecture are required");
    this.base = this.options.api.replace(/\/$/, "");
    this.queue = new Queue(this.options.storage,
      `progress-player:${this.base}:${this.options.user}:${this.options.course}`);
    this.played = [];        // closed intervals not reported yet
    this.from = null;        // start of the interval being played, or null
    this.last = null;        // [media time, wall time] of the last step seen
    this.timer = null;
    this.retryAt = 0;
    this.retryTimer = null;
    this.failures = 0;
    this.sending = null;
    this.touched = false;    // nothing is reported before the video first plays
    this.left = null;        // the position the last page hide reported
    this.listeners = [];
    const on = (target, type, handler) => {
      target.addEventListener(type, handler);
      this.listeners.push([target, type, handler]);
    };
    on(video, "playing", () => this.#start());
    on(video, "timeupdate", () => this.#step());
    on(video, "seeking", () => this.#close());
    on(video, "seeked", () => {
      if (!video.paused) this.#open();
      this.report();
    });
    on(video, "pause", () => this.#stop());
    on(video, "ended", () => this.#stop());
    on(document, "visibilitychange", () => document.visibilityState === "hidden" && this.leave());
    on(window, "pagehide", () => this.leave());
    on(window, "online", () => this.flush());
    this.flush();  // what a previous page left unsent
  }

  /** Stop listening and reporting (the queue stays for the next page). */
  destroy() {
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    for (const [target, type, handler] of this.listeners) target.removeEventListener(type, handler);
    this.listeners = [];
  }

  #start() {
    this.touched = true;
    if (this.from === null) this.#open();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.report(), this.options.heartbeatMs);
  }

  #stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.#step();
    this.#close();
    this.report();
  }

  #open() {
    this.from = this.video.currentTime;
    this.last = [this.from, performance.now()];
  }

  /** One step of playback: extends the interval being played, unless it was a jump. */
  #step() {
    if (this.from === null) return;
    const now = this.video.currentTime;
    const wall = performance.now();
    const [time, seen] = this.last;
    const possible = ((wall - seen) / 1000) * this.video.playbackRate + 1;
    if (this.video.seeking || now < time || now - time > possible) {
      this.#close();
      if (!this.video.paused && !this.video.seeking) this.#open();
      return;
    }
    this.last = [now, wall];
  }

  /** Keep the interval played so far; nothing is being played until the next `playing`. */
  #close() {
    if (this.from !== null && this.last[0] > this.from) this.played.push([ms(this.from), ms(this.last[0])]);
    this.from = null;
  }

  /** What was played and where the video is now, as one report (the interval being played
   * is cut here and goes on from this point). */
  #take() {
    this.#step();
    const played = [...this.played];
    if (this.from !== null && this.last[0] > this.from) {
      played.push([ms(this.from), ms(this.last[0])]);
      this.from = this.last[0];
    }
    this.played = [];
    return {
      lecture: this.options.lecture,
      watchTime: ms(this.video.currentTime),
      played: union(played),
      at: new Date().toISOString(),
    };
  }

  /** Queue a report now and send the queue. */
  report() {
    if (!this.touched) return Promise.resolve();
    this.queue.add(this.#take());
    return this.flush();
  }

  /** The page is going away (or hidden): queue a report and send it by a request that
   * outlives the page. A beacon carries the cookie but no header; with a token, a keepalive
   * fetch. It stays queued: if it did not arrive, the next page sends it again. */
  leave() {
    if (!this.touched) return;
    const report = this.#take();
    if (!report.played.length && report.watchTime === this.left) return;  // hidden, then closed
    this.left = report.watchTime;
    const entry = this.queue.add(report);
    const body = JSON.stringify(this.#item(entry));
    const url = `${this.base}/${this.options.course}/lectures/${this.options.lecture}`;
    const token = this.#token();
    if (!token && navigator.sendBeacon?.(url, new Blob([body], { type: "text/plain;charset=UTF-8" }))) return;
    fetch(url, { method: "PATCH", body, keepalive: true, ...this.#auth(token) }).catch(() => {});
  }

  #token() {
    const token = this.options.token;
    return typeof token === "function" ? token() : token;
  }

  /** Credentials and headers of a request: the token, else the cookie (a cookie sent with a
   * token would win over it, and bring the origin check with it). */
  #auth(token) {
    const headers = { "Content-Type": "application/json", Prefer: "return=minimal" };
    if (token) headers.Authorization = `Bearer ${token}`;
    return { headers, credentials: token ? "omit" : "include" };
  }

  /** The body of one lecture's entry (at most MAX_INTERVALS intervals). */
  #item(entry) {
    const item = { watchTime: entry.watchTime, at: entry.at };
    if (entry.played.length) item.played = entry.played.slice(0, MAX_INTERVALS);
    return item;
  }

  /** Send what is queued: one lecture fresh from the player by a single PATCH, anything
   * else (a backlog after a failure, several lectures) by the batch endpoint. One request at
   * a time; after a failure, not before the retry time. */
  flush() {
    if (this.sending) return this.sending;
    const entries = Object.values(this.queue.read()).slice(0, MAX_BATCH);
    if (!entries.length || Date.now() < this.retryAt) return Promise.resolve();
    this.sending = this.#send(entries).finally(() => {
      this.sending = null;
      this.flush();  // what was queued meanwhile (nothing after a failure: not before retryAt)
    });
    return this.sending;
  }

  async #send(entries) {
    const sent = entries.map((entry) => ({ lecture: entry.lecture, seq: entry.seq, played: this.#item(entry).played || [] }));
    const single = entries.length === 1 && !this.failures;
    const path = single ? `/${this.options.course}/lectures/${entries[0].lecture}` : `/${this.options.course}/lectures`;
    const body = single ? this.#item(entries[0])
      : { lectures: entries.map((entry) => ({ lecture: entry.lecture, ...this.#item(entry) })) };
    let response;
    try {
      response = await fetch(this.base + path, {
        method: "PATCH", body: JSON.stringify(body), ...this.#auth(this.#token()),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      return this.#retry(null);
    }
    if (response.ok) {
      this.failures = 0;
      this.queue.done(sent);
      return;
    }
    if ([400, 403, 404, 413].includes(response.status)) {
      // Never accepted as it is: dropped, and said.
      this.queue.done(sent, true);
      this.options.onError?.(response.status, body);
      return;
    }
    return this.#retry(response);  // 401 (a fresh token may come), 409, 429, 5xx
  }

  /** Try again later: after Retry-After when the service says it, else backing off. */
  #retry(response) {
    const after = Number(response?.headers.get("Retry-After"));
    const delay = after > 0 ? after * 1000 : RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
    this.failures += 1;
    this.retryAt = Date.now() + delay;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.flush(), delay);
  }
}

/** The three-line start: report `video`'s progress in one lecture (see ProgressPlayer). */
export function trackProgress(video, options) {
  return new ProgressPlayer(video, options);
}
