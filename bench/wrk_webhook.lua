-- wrk script for bench/ingest.py: POSTs Alertmanager v4 webhooks with NEW fingerprints on every request.
--
-- Environment (set by bench/ingest.py):
--   BENCH_ALERTS  alerts per webhook body (default 1)
--   BENCH_PREFIX  6 hex digits that start every fingerprint of this run/phase (default "000000")
--   BENCH_PATH    request path (default /webhook)
--   BENCH_TOKEN   bearer token; empty: no Authorization header
--
-- Fingerprints are 16 hex digits, as Alertmanager sends them: PREFIX(6) .. thread(2) .. sequence(8), unique per alert
-- across threads and requests. Each alert also carries them in a `bench_id` label (so labels differ too), and
-- every request has its own groupKey. The shape is that of fixtures/alertmanager-0.25/raw/b_group_5_firing.body.
--
-- done() prints one line `BENCH_JSON {...}` with wrk's summary and latency percentiles (microseconds).

local N = tonumber(os.getenv("BENCH_ALERTS") or "1")
local PREFIX = os.getenv("BENCH_PREFIX") or "000000"
local PATH = os.getenv("BENCH_PATH") or "/webhook"
local TOKEN = os.getenv("BENCH_TOKEN") or ""

local thread_counter = 0

function setup(thread)
   thread:set("tid", thread_counter)
   thread_counter = thread_counter + 1
end

local headers = { ["Content-Type"] = "application/json" }
if TOKEN ~= "" then
   headers["Authorization"] = "Bearer " .. TOKEN
end

-- %s slots: fingerprint (bench_id label), fingerprint (instance), fingerprint (description), fingerprint (summary),
-- fingerprint (field).
local ALERT = '{"status":"firing","labels":{"alertname":"BenchIngest","bench_id":"%s","instance":"bench-%s.internal:8080",'
   .. '"job":"bench-api","service":"bench","severity":"critical"},'
   .. '"annotations":{"description":"bench-%s.internal:8080 of job bench-api has been down for more than 1 minute.",'
   .. '"summary":"bench-%s.internal:8080 is down"},'
   .. '"startsAt":"2026-11-23T08:09:20.177Z","endsAt":"0001-01-01T00:00:00Z",'
   .. '"generatorURL":"http://127.0.0.1:9090/graph?g0.expr=up%%7Bjob%%3D%%22bench-api%%22%%7D%%20%%3D%%3D%%200\\u0026g0.tab=1",'
   .. '"fingerprint":"%s"}'

local HEAD = '{"receiver":"webhook-receiver","status":"firing","alerts":['
-- %s slot: request id (groupKey)
local TAIL = '],"groupLabels":{"alertname":"BenchIngest","service":"bench"},'
   .. '"commonLabels":{"alertname":"BenchIngest","job":"bench-api","service":"bench","severity":"critical"},'
   .. '"commonAnnotations":{},"externalURL":"http://127.0.0.1:9093","version":"4",'
   .. '"groupKey":"{}:{alertname=\\"BenchIngest\\", bench_request=\\"%s\\"}","truncatedAlerts":0}'

local counter = 0
local parts = {}

function request()
   local tid = tid or 0
   local base = counter * N
   counter = counter + 1
   for i = 1, N do
      local fp = string.format("%s%02x%08x", PREFIX, tid, base + i - 1)
      parts[i] = string.format(ALERT, fp, fp, fp, fp, fp)
   end
   local rid = string.format("%s%02x%08x", PREFIX, tid, counter)
   local body = HEAD .. table.concat(parts, ",", 1, N) .. string.format(TAIL, rid)
   return wrk.format("POST", PATH, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   local pct = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
      pct[#pct + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
   end
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"percentiles":{%s}}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev, table.concat(pct, ",")))
end
