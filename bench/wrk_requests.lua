-- wrk script for bench.run. Arguments after "--": LIST_FILE MODE.
-- LIST_FILE has one request per line: METHOD <tab> PATH <tab> TOKEN <tab> BODY (may be empty)
--   [<tab> HEADERS: "Name: value" pairs separated by "|", e.g. "Prefer: return=minimal"].
-- MODE "random": every request picks a random line, so many users' tokens and records are hit.
-- MODE "writer": thread i (run with -t N -c N: one connection per thread) owns line i and PATCHes
--   it with a rising watchTime (its request number) and an alternating flag (true when odd).
--   Each thread remembers the number of its last request answered 200, so the harness can
--   tell from the database whether an acknowledged write was lost.
-- MODE "pair": thread i (run with -t N -c N) owns lines 2i-1 and 2i and sends them in turn,
--   first, second, first... (POST complete then reset of one record, never two at once).
-- done() prints one line "BENCH_JSON {...}" for bench.load to parse.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("id", thread_count)
  table.insert(threads, thread)
end

-- Globals below live in each thread's own Lua state; done() reads them with thread:get().
statuses = {}
sent = 0
acked = 0

local requests = {}
local mine = nil
local pair = nil
local mode = "random"

local function split_tabs(line)
  local fields = {}
  for value in (line .. "\t"):gmatch("([^\t]*)\t") do table.insert(fields, value) end
  return fields
end

local function parse(line)
  local f = split_tabs(line)
  local method, path, token, body, extra = f[1], f[2], f[3], f[4] or "", f[5] or ""
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  for header in extra:gmatch("[^|]+") do
    local name, value = header:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then headers[name] = value end
  end
  return {method = method, path = path, headers = headers, body = body ~= "" and body or nil}
end

function init(args)
  mode = args[2] or "random"
  local lines = {}
  for line in io.lines(args[1]) do
    if line ~= "" then table.insert(lines, parse(line)) end
  end
  math.randomseed(os.time() * 1000 + id)
  if mode == "writer" then
    mine = lines[id]
  elseif mode == "pair" then
    local first, second = lines[2 * id - 1], lines[2 * id]
    pair = {wrk.format(first.method, first.path, first.headers, first.body),
            wrk.format(second.method, second.path, second.headers, second.body)}
  else
    -- Pre-formatted, so that picking a request costs wrk next to nothing.
    for i, r in ipairs(lines) do requests[i] = wrk.format(r.method, r.path, r.headers, r.body) end
  end
end

function request()
  sent = sent + 1
  if mine then
    local body = string.format('{"isCompleted": %s, "watchTime": %d}',
                               sent % 2 == 1 and "true" or "false", sent)
    return wrk.format(mine.method, mine.path, mine.headers, body)
  end
  if pair then return pair[2 - sent % 2] end
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  -- One connection per writer thread: this response answers request number `sent`.
  if status == 200 then acked = sent end
end

local function encode(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    for k, v in pairs(value) do
      table.insert(parts, string.format("%q:%s", tostring(k), encode(v)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "number" then
    if value ~= value or value == math.huge or value == -math.huge then return "null" end
    return string.format("%.17g", value)
  elseif kind == "string" then
    return string.format("%q", value)
  end
  return tostring(value)
end

function done(summary, latency, requests_stats)
  local out = {
    duration_us = summary.duration, requests = summary.requests, bytes = summary.bytes,
    errors = summary.errors, statuses = {}, threads = {},
    latency_us = {p50 = latency:percentile(50), p90 = latency:percentile(90),
                  p99 = latency:percentile(99), mean = latency.mean, max = latency.max},
  }
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do
      out.statuses[status] = (out.statuses[status] or 0) + n
    end
    out.threads[t:get("id")] = {sent = t:get("sent"), acked = t:get("acked")}
  end
  io.write("BENCH_JSON " .. encode(out) .. "\n")
end
