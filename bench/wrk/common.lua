-- Shared helpers for the bench/wrk scripts. Loaded with dofile() by each script.
--
-- Configuration comes from the environment (set by bench/run):
--   BENCH_KIND    scaivault | openbao | hello   (hello is served ScaiVault-shaped requests)
--   BENCH_TOKEN   the token sent with every request
--   BENCH_N       number of seeded paths (bench/s000000 .. bench/s<N-1>)
--   BENCH_GROUP   batch scripts only: responses that make one timed batch
--
-- Every script's done() prints one line `BENCHJSON {...}` that bench/tools/benchctl.py parses:
-- request count, duration, error counts and latency percentiles (microseconds) from wrk's own
-- histogram, plus per-batch timings for the batch script.

local M = {}

M.kind = os.getenv("BENCH_KIND") or "scaivault"
M.token = os.getenv("BENCH_TOKEN") or ""
M.n = tonumber(os.getenv("BENCH_N") or "1000")
M.prefix = "bench/s"

function M.path(i)
  return string.format("%s%06d", M.prefix, i)
end

function M.random_path()
  return M.path(math.random(0, M.n - 1))
end

-- n distinct random indices in 0..N-1 (partial Fisher-Yates)
function M.random_indices(n)
  local idx, out = {}, {}
  for k = 1, n do
    local j = math.random(k, M.n)
    local a = idx[k] or (k - 1)
    local b = idx[j] or (j - 1)
    idx[k], idx[j] = b, a
    out[k] = b
  end
  return out
end

-- n distinct random paths
function M.random_paths(n)
  local out = {}
  for k, i in ipairs(M.random_indices(n)) do out[k] = M.path(i) end
  return out
end

function M.headers(json)
  local h = {}
  if M.kind == "openbao" then
    h["X-Vault-Token"] = M.token
  else
    h["Authorization"] = "Bearer " .. M.token
  end
  if json then
    h["Content-Type"] = "application/json"
  end
  return h
end

function M.read_request(p)
  if M.kind == "openbao" then
    return wrk.format("GET", "/v1/secret/data/" .. p, M.headers(false))
  end
  return wrk.format("GET", "/v1/secrets/" .. p, M.headers(false))
end

-- Pre-built GET requests for every seeded path (built once per thread in init(), so request()
-- costs a table lookup and the generator spends its time on the network, not in Lua).
function M.prebuilt_reads()
  local reqs = {}
  for i = 0, M.n - 1 do
    reqs[i + 1] = M.read_request(M.path(i))
  end
  return reqs
end

local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

function M.random_string(len)
  local t = {}
  for k = 1, len do
    local c = math.random(1, #alphabet)
    t[k] = alphabet:sub(c, c)
  end
  return table.concat(t)
end

function M.write_request(p, body)
  if M.kind == "openbao" then
    return wrk.format("POST", "/v1/secret/data/" .. p, M.headers(true), body)
  end
  return wrk.format("PUT", "/v1/secrets/" .. p, M.headers(true), body)
end

-- Thread bookkeeping: setup() runs in the main Lua state; each thread then gets `thread_id`.
M.threads = {}

function M.setup(thread)
  thread:set("thread_id", #M.threads)
  table.insert(M.threads, thread)
end

function M.seed_rng()
  local tid = thread_id or 0
  math.randomseed(os.time() * 1000 + tid * 7919 + math.floor(os.clock() * 1e6))
  for _ = 1, 10 do math.random() end
end

local function pct(sorted, p)
  local n = #sorted
  if n == 0 then return 0 end
  local k = math.ceil(p / 100 * n)
  if k < 1 then k = 1 end
  if k > n then k = n end
  return sorted[k]
end

-- extra: optional table of already-formatted JSON fragments `"key":value`
function M.done(summary, latency, requests, extra)
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}',
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)),
  }
  if extra then
    for _, f in ipairs(extra) do table.insert(parts, f) end
  end
  io.write("BENCHJSON {" .. table.concat(parts, ",") .. "}\n")
end

-- Per-batch timings (microseconds) collected by the batch script in each thread's global `times`,
-- copied out with thread:get() and summarised here in the main state.
function M.batch_summary()
  local all = {}
  for _, t in ipairs(M.threads) do
    local ts = t:get("times")
    if ts then
      for _, v in ipairs(ts) do all[#all + 1] = v end
    end
  end
  table.sort(all)
  local sum = 0
  for _, v in ipairs(all) do sum = sum + v end
  local mean = 0
  if #all > 0 then mean = sum / #all end
  return string.format('"batch":{"count":%d,"mean_us":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}',
    #all, mean, pct(all, 50), pct(all, 90), pct(all, 99), pct(all, 100))
end

return M
