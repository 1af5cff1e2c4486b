-- A realistic request mix for the embedded MES, replayed by wrk (benchmarks/bench_mes.py runs it).
--
-- Every cycle of 12 requests: 3 heartbeats (2.2), 1 state change (2.3), 1 process-parameter upload (2.26),
-- 1 new jelly roll from a winder (2.44), and 6 route moves (2.27/2.28 inbound and outbound at hot press,
-- X-Ray and tab cutting) of jelly rolls made LAG cycles earlier: every move depends on a move answered
-- thousands of requests before, so with wrk's concurrency the route order holds and no move is refused
-- for being early. Codes are unique per run and thread; the token comes from the login the driver did.
--
-- Environment: TWIN_TOKEN (the Authorization value), TWIN_RUN (a run tag), TWIN_EQUIPMENT (space-separated
-- equipment codes for heartbeats and state changes), TWIN_LAG (cycles between two moves of one jelly roll).

local token = os.getenv("TWIN_TOKEN") or ""
local run = os.getenv("TWIN_RUN") or "R"
local lag = tonumber(os.getenv("TWIN_LAG") or "250")
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local headers = { ["Content-Type"] = "application/json", ["Authorization"] = token }
local base = "/EquipmentService/api/v1/"
local equipment = {}
local n, cycle, seq = 0, 0, 0
local state = {}
sent_ok, sent_refused = 0, 0  -- globals: done() reads them through thread:get

function init(args)
  local all = {}
  for code in string.gmatch(os.getenv("TWIN_EQUIPMENT") or "A02-WIND-01", "%S+") do
    table.insert(all, code)
  end
  -- each thread reports state for its own equipment, so two threads never race on one equipment's state
  for i, code in ipairs(all) do
    if (i % 2) == (id % 2) then table.insert(equipment, code) end
  end
  if #equipment == 0 then equipment = all end
end

local function now()
  local t = os.time()
  return os.date("!%Y-%m-%dT%H:%M:%S", t) .. string.format(".%03dZ", seq % 1000)
end

local function head(eq)
  return '{"equipmentCode":"' .. eq .. '","resourceCode":"R-' .. eq .. '","localTime":"' .. now() .. '"'
end

local function jr(k)
  return "JR" .. run .. "-" .. id .. "-" .. k
end

local stations = { "A02-HP-0", "A02-XR-0", "A02-TPW-0" }

local function move(slot)
  -- slot 0..5: inbound/outbound at station slot//2 of the jelly roll made (slot + 1) * lag cycles ago
  local k = cycle - (slot + 1) * lag
  if k < 1 then return nil end
  local eq = stations[math.floor(slot / 2) + 1] .. ((k % 2) + 1)
  if slot % 2 == 0 then
    return wrk.format("POST", base .. "Inbound", headers, head(eq) .. ',"sfc":"' .. jr(k) .. '"}')
  end
  return wrk.format("POST", base .. "Outbound", headers, head(eq) .. ',"sfc":"' .. jr(k) ..
    '","passed":1,"paramList":[{"paramCode":"CYCLE_TIME_S","paramValue":"2.48","collectionTime":"' .. now() ..
    '"}],"bindFeedingCodeList":[],"ngList":[]}')
end

local function heartbeat()
  local eq = equipment[(seq % #equipment) + 1]
  return wrk.format("POST", base .. "Heartbeat", headers, head(eq) .. ',"isOnline":true}')
end

function request()
  seq = seq + 1
  local slot = n % 12
  n = n + 1
  if slot == 0 then cycle = cycle + 1 end
  if slot <= 2 then return heartbeat() end
  if slot == 3 then
    local eq = equipment[(cycle % #equipment) + 1]
    local code = (state[eq] == "1") and "3" or "1"
    state[eq] = code
    return wrk.format("POST", base .. "State", headers, head(eq) .. ',"stateCode":"' .. code .. '","downReason":""}')
  end
  if slot == 4 then
    local eq = equipment[(cycle % #equipment) + 1]
    return wrk.format("POST", base .. "EquipmentProcessParam", headers, head(eq) ..
      ',"paramList":[{"paramCode":"EQ_SPEED","paramValue":"100.2","collectionTime":"' .. now() ..
      '"},{"paramCode":"EQ_AIR_PRESSURE","paramValue":"0.62","collectionTime":"' .. now() .. '"}]}')
  end
  if slot == 5 then
    local eq = "A02-WIND-0" .. ((cycle % 4) + 1)
    return wrk.format("POST", base .. "CollingPolar", headers, head(eq) .. ',"sfc":"' .. jr(cycle) ..
      '","passed":1,"ngList":[]}')
  end
  return move(slot - 6) or heartbeat()
end

function response(status, hdrs, body)
  if status == 200 and string.sub(body, 1, 9) == '{"code":0' then
    sent_ok = sent_ok + 1
  else
    sent_refused = sent_refused + 1
  end
end

function done(summary, latency, requests)
  local ok, refused = 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (t:get("sent_ok") or 0)
    refused = refused + (t:get("sent_refused") or 0)
  end
  io.write(string.format("TWIN ok=%d refused=%d\n", ok, refused))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("TWIN p%g=%.3f\n", p, latency:percentile(p) / 1000.0))
  end
end
