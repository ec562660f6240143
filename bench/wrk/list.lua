-- List the 1,000 seeded paths in one request.
-- ScaiVault: GET /v1/secrets?prefix=bench/&limit=1000
-- OpenBao:   LIST on KV v2 metadata (GET /v1/secret/metadata/bench/?list=true)
local C = dofile((os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/common.lua")

local req

function setup(thread) C.setup(thread) end
function init(args)
  if C.kind == "openbao" then
    req = wrk.format("GET", "/v1/secret/metadata/bench/?list=true", C.headers(false))
  else
    local prefix = os.getenv("BENCH_LIST_PREFIX") or "bench/"
    req = wrk.format("GET", "/v1/secrets?prefix=" .. prefix .. "&limit=1000", C.headers(false))
  end
end
function request() return req end
function done(summary, latency, requests) C.done(summary, latency, requests) end
