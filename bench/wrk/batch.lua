-- Batch read of 100 distinct random paths, timed per batch.
-- ScaiVault (BENCH_GROUP=1):   one POST /v1/secrets/batch {"paths":[...100]} is one batch.
-- OpenBao   (BENCH_GROUP=100): 100 sequential GETs on the same keep-alive connection are one batch.
-- Run with one connection so requests are strictly sequential. A batch is timed with the monotonic
-- clock from the moment its first request is handed to wrk to the moment its last response has
-- arrived. Requests are pre-built in init() (256 random batch bodies; one GET per seeded path), so
-- the clock measures the network and the server, not Lua string building.
local C = dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
  int clock_gettime(int clk_id, bench_timespec_t *tp);
]]
local ts = ffi.new("bench_timespec_t")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local group = tonumber(os.getenv("BENCH_GROUP") or "1")
local size = 100
local pending = {}   -- OpenBao: a sample of distinct paths, requested one by one
local in_batch = 0   -- responses received in the current batch
local started = nil  -- when the current batch's first request was built
local skip = 1       -- the first batch is dropped: wrk calls request() once before the run starts
times = {} -- global: read by done() through thread:get("times")

function setup(thread) C.setup(thread) end
local bodies = {}     -- ScaiVault: pre-built batch requests, used in turn
local reads          -- OpenBao: pre-built GET requests, by seeded index
local next_body = 0

function init(args)
  C.seed_rng()
  if group == 1 then
    for k = 1, 256 do
      local body = '{"paths":["' .. table.concat(C.random_paths(size), '","') .. '"]}'
      bodies[k] = wrk.format("POST", "/v1/secrets/batch", C.headers(true), body)
    end
  else
    reads = C.prebuilt_reads()
  end
end

-- A batch starts when a request is built with no batch open, and ends when `group` responses have
-- arrived since then (the request/response pairing does not rely on wrk's call order).
function request()
  if started == nil then started = now_us() end
  if group == 1 then
    next_body = next_body % #bodies + 1
    return bodies[next_body]
  end
  if #pending == 0 then pending = C.random_indices(size) end
  return reads[table.remove(pending) + 1]
end

function response(status, headers, body)
  in_batch = in_batch + 1
  if in_batch >= group then
    if skip > 0 then
      skip = skip - 1
    else
      times[#times + 1] = now_us() - started
    end
    in_batch = 0
    started = nil
  end
end

function done(summary, latency, requests)
  C.done(summary, latency, requests, { C.batch_summary() })
end
