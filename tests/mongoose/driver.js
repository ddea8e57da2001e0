// The original LMS's CourseProgress model on real Mongoose 8, driven line by line from pytest
// (tests/mongoose_driver.py). Usage: node driver.js <mongodb-uri>
//
// Protocol: one JSON command per stdin line, one JSON answer per stdout line, in order.
// Failures answer {"ok": false, "error": <err.name>, "message": ..., "code"?: ...}; the process
// never dies on a bad command. Anything else Mongoose or Node prints goes to stderr, so stdout
// carries answers only. Loaded documents stay in memory under numbered handles, so a test can
// load, let another writer change the record, then edit and save the stale copy.
'use strict';

const readline = require('node:readline');
const mongoose = require('mongoose');

const { EJSON } = mongoose.mongo.BSON;

// stdout is the answer channel: route stray console.log output (ours or a library's) to stderr.
console.log = console.error;

/** The schema as the original LMS declares it (models/courseProgress.model.js). */
function progressSchema() {
  const lectureProgressSchema = new mongoose.Schema({
    lecture: { type: mongoose.Schema.Types.ObjectId, ref: 'Lecture', required: true },
    isCompleted: { type: Boolean, default: false },
    watchTime: { type: Number, default: 0 },
    lastWatched: { type: Date },
  });
  const schema = new mongoose.Schema({
    user: { type: mongoose.Schema.Types.ObjectId, ref: 'User', required: true },
    course: { type: mongoose.Schema.Types.ObjectId, ref: 'Course', required: true },
    isCompleted: { type: Boolean, default: false },
    completionPercentage: { type: Number, default: 0 },
    lectureProgress: [lectureProgressSchema],
    lastAccessed: { type: Date, default: Date.now },
  }, { timestamps: true });
  schema.index({ user: 1, course: 1 }, { unique: true });
  // The original's hook: the two derived fields follow the entries on every save.
  schema.pre('save', function recompute(next) {
    const total = this.lectureProgress.length;
    const completed = this.lectureProgress.filter((entry) => entry.isCompleted).length;
    this.completionPercentage = total ? Math.round((completed / total) * 100) : 0;
    this.isCompleted = this.completionPercentage === 100;
    next();
  });
  return schema;
}

const SCHEMA = progressSchema();
const state = {
  connection: null, // the connection of the current database (a useDb child of base)
  base: null,
  handles: new Map(),
  nextHandle: 1,
  commands: [],
  closing: false,
};

/** A plain JSON value for a document: ObjectIds as hex, dates as ISO strings. */
function plain(value) {
  if (value === null || value === undefined) return value ?? null;
  if (value instanceof Date) return value.toISOString();
  if (value._bsontype === 'ObjectId') return value.toHexString();
  if (value._bsontype) return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  }
  return value;
}

/** The document's stored shape as plain JSON (hydrated doc in, __v included). */
function docJson(doc) {
  return doc === null ? null : plain(doc.toObject({ depopulate: true, versionKey: true }));
}

/** The CourseProgress model on the current database (defined once per database). */
async function model() {
  const connection = state.connection;
  if (!connection.models.CourseProgress) {
    connection.model('CourseProgress', SCHEMA);
  }
  const CourseProgress = connection.models.CourseProgress;
  // A real app's first request comes long after autoIndex built the unique index; wait for it
  // so a duplicate-key test does not race the index build.
  await CourseProgress.init();
  return CourseProgress;
}

/** Keep a hydrated document under a new handle; returns the answer for it. */
function remember(doc) {
  if (doc === null) return { ok: true, handle: null, doc: null };
  const handle = state.nextHandle++;
  state.handles.set(handle, doc);
  return { ok: true, handle, doc: docJson(doc) };
}

/** The document behind a handle, or a thrown HandleError. */
function handleDoc(command) {
  const doc = state.handles.get(command.handle);
  if (!doc) {
    const error = new Error(`no document under handle ${command.handle}`);
    error.name = 'HandleError';
    throw error;
  }
  return doc;
}

const ENTRY_FIELDS = new Set(['isCompleted', 'watchTime', 'lastWatched']);

const OPS = {
  /** Switch to another database on the same client (as connection.useDb does in an app). */
  async use(command) {
    state.connection = state.base.useDb(command.db, { useCache: true });
    await model();
    return { ok: true, db: command.db };
  },

  /** findOne by (user, course): a hydrated document kept under a handle. */
  async load(command) {
    const CourseProgress = await model();
    return remember(await CourseProgress.findOne({ user: command.user, course: command.course }));
  },

  /** doc.lectureProgress[i][field] = value, in memory only. */
  async setEntryField(command) {
    const doc = handleDoc(command);
    if (!ENTRY_FIELDS.has(command.field)) throw new TypeError(`not an entry field: ${command.field}`);
    const entry = doc.lectureProgress[command.index];
    if (!entry) throw new RangeError(`no entry at index ${command.index}`);
    entry[command.field] = command.value;
    return { ok: true, doc: docJson(doc) };
  },

  /** doc.lectureProgress.push(entry), in memory only. */
  async pushEntry(command) {
    const doc = handleDoc(command);
    doc.lectureProgress.push(command.entry);
    return { ok: true, doc: docJson(doc) };
  },

  /** doc.lectureProgress = entries (a whole new array), in memory only. */
  async reassign(command) {
    const doc = handleDoc(command);
    doc.lectureProgress = command.entries;
    return { ok: true, doc: docJson(doc) };
  },

  /** await doc.save(): what the original's PATCH, complete and reset end with. */
  async save(command) {
    const doc = handleDoc(command);
    await doc.save();
    return { ok: true, doc: docJson(doc) };
  },

  /** The original's first PATCH: CourseProgress.create with one entry per course lecture. */
  async create(command) {
    const CourseProgress = await model();
    const completed = new Set(command.completed || []);
    const doc = await CourseProgress.create({
      user: command.user,
      course: command.course,
      lectureProgress: (command.lectures || []).map((lecture) => ({
        lecture, isCompleted: completed.has(lecture),
      })),
    });
    return remember(doc);
  },

  /** Every command sent since the last call, as canonical Extended JSON (types kept). */
  async commands() {
    const seen = state.commands;
    state.commands = [];
    return { ok: true, commands: seen };
  },

  /** Answer, then close the client and exit. */
  async close() {
    state.closing = true;
    return { ok: true };
  },
};

/** An error as an answer line: its name (VersionError, MongoServerError...) and code. */
function failure(error) {
  const answer = { ok: false, error: error?.name || 'Error', message: String(error?.message ?? error) };
  if (error?.code !== undefined) answer.code = error.code;
  if (error?.codeName !== undefined) answer.codeName = error.codeName;
  if (error?.keyValue !== undefined) answer.keyValue = plain(error.keyValue);
  return answer;
}

/** Run one input line; always resolves to an answer. */
async function run(line) {
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    return failure(error);
  }
  const op = OPS[command?.op];
  if (!op) return { ok: false, error: 'UnknownOp', message: `unknown op: ${command?.op}` };
  try {
    return await op(command);
  } catch (error) {
    return failure(error);
  }
}

/** Write one answer line. */
function answer(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Connect as a real app would, report readiness, then serve stdin until close or EOF. */
async function main() {
  const uri = process.argv[2];
  // Never crash: a stray rejection is logged, not fatal (the default since Node 15 is to exit).
  process.on('unhandledRejection', (error) => console.error('unhandledRejection', error));
  try {
    state.base = mongoose.createConnection(uri, { monitorCommands: true, autoIndex: true });
    state.base.getClient().on('commandStarted', (event) => {
      state.commands.push({
        name: event.commandName,
        db: event.databaseName,
        command: EJSON.serialize(event.command, { relaxed: false }),
      });
    });
    await state.base.asPromise();
    state.connection = state.base;
    answer({ ok: true, ready: true, mongoose: mongoose.version, node: process.version });
  } catch (error) {
    answer({ ...failure(error), ready: false });
    process.exit(1);
  }
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    answer(await run(line));
    if (state.closing) break;
  }
  await state.base.close().catch((error) => console.error('close', error));
  process.exit(0);
}

main();
