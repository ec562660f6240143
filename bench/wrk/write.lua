-- Writes: every request writes a new version of one random path among the N seeded ones, with a
-- random JSON body {"data":{"value":<32 random chars>,"n":<counter>}} (same body shape for both
-- systems: ScaiVault PUT /v1/secrets/{path}, OpenBao POST /v1/secret/data/{path}).
local C = dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

local counter = 0

function setup(thread) C.setup(thread) end
function init(args) C.seed_rng() end
function request()
  counter = counter + 1
  local body = string.format('{"data":{"value":"%s","n":"%d"}}', C.random_string(32), counter)
  return C.write_request(C.random_path(), body)
end
function done(summary, latency, requests) C.done(summary, latency, requests) end
