-- Single-secret reads: every request GETs one random path among the N seeded ones.
local C = dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

function setup(thread) C.setup(thread) end
local reqs

function init(args)
  C.seed_rng()
  reqs = C.prebuilt_reads()
end
function request() return reqs[math.random(1, #reqs)] end
function done(summary, latency, requests) C.done(summary, latency, requests) end
