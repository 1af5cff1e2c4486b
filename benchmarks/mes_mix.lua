-- A realistic request mix for the embedded MES, replayed by wrk (benchmarks/bench_mes.py runs it).
--
-- Every cycle of 12 requests: 3 heartbeats (2.2), 1 state change (2.3), 1 process-parameter upload (2.26),
-- 1 new jelly roll from a winder (2.44), and 6 route moves (2.27 inbound / 2.28 outbound): a jelly roll made
-- LAG cycles earlier in and out of hot press, and a cell in and out of Mylar wrapping, then of casing. The
-- cells are real products of the MES: the driver takes them over as work in progress (2.47, material
-- CELL-QK-LFP-280AH) before the run, codes TWIN_CELLS<thread>-<k>. Each move depends on a move answered
-- LAG cycles before, so with wrk's concurrency the route order holds and no move is refused for being early.
-- Codes are unique per run and thread; the token comes from the login the driver did.
--
-- Environment: TWIN_TOKEN (the Authorization value), TWIN_RUN (a run tag), TWIN_EQUIPMENT (space-separated
-- equipment codes for heartbeats and state changes; the driver sets each to state 3 before a run, so the first
-- report of 1 is a change), TWIN_CELLS (the prefix of the cells taken over), TWIN_LAG (cycles between two moves of one jelly roll: it must exceed the requests
-- a thread has in flight / 12), TWIN_RATE and TWIN_THREADS (see pacing below).
--
-- Pacing (wrk has no rate option; wrk2 is not packaged): with TWIN_RATE > 0 the script defines wrk's delay()
-- hook. Each thread hands out send slots at TWIN_RATE / TWIN_THREADS per second on a monotonic clock
-- (LuaJIT ffi, clock_gettime); a connection that is free waits for the next slot, so the offered rate holds
-- whatever the latency, as long as a connection is free at each slot. wrk measures latency from the actual
-- send; a slot that found no free connection (sent more than 1 ms late) is counted as a late start, with the
-- largest lateness, so coordinated omission is reported rather than hidden.

local token = os.getenv("TWIN_TOKEN") or ""
local run = os.getenv("TWIN_RUN") or "R"
local cells = os.getenv("TWIN_CELLS") or ("QKC" .. run .. "-")
local lag = tonumber(os.getenv("TWIN_LAG") or "250")
local rate = tonumber(os.getenv("TWIN_RATE") or "0")
local nthreads = tonumber(os.getenv("TWIN_THREADS") or "1")
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
late, late_max_ms, slots = 0, 0, 0

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

local function cell(k)
  return cells .. id .. "-" .. k
end

-- slot -> the product, its station (alternating between two with a numbered suffix) and direction; a product
-- made or taken over at cycle k is moved by slot i at cycle k + step * lag
local moves = {
  { code = jr, station = "A02-HP-0", alternate = true, inbound = true, step = 1 },
  { code = jr, station = "A02-HP-0", alternate = true, inbound = false, step = 2 },
  { code = cell, station = "A02-MY-01", inbound = true, step = 1 },
  { code = cell, station = "A02-MY-01", inbound = false, step = 2 },
  { code = cell, station = "A02-CAS-01", inbound = true, step = 3 },
  { code = cell, station = "A02-CAS-01", inbound = false, step = 4 },
}

local function move(slot)
  local m = moves[slot + 1]
  local k = cycle - m.step * lag
  if k < 1 then return nil end
  local eq = m.alternate and (m.station .. ((k % 2) + 1)) or m.station
  local code = m.code(k)
  if m.inbound then
    return wrk.format("POST", base .. "Inbound", headers, head(eq) .. ',"sfc":"' .. code .. '"}')
  end
  return wrk.format("POST", base .. "Outbound", headers, head(eq) .. ',"sfc":"' .. code ..
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

if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } twin_timespec;
    int clock_gettime(int clk_id, twin_timespec *tp);
  ]])
  local ts = ffi.new("twin_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = nthreads * 1000.0 / rate  -- ms between two sends of this thread
  local next_slot = nil

  function delay()
    local t = now_ms()
    next_slot = next_slot or t
    local wait = next_slot - t
    next_slot = next_slot + interval
    slots = slots + 1
    if wait < -1 then
      late = late + 1
      if -wait > late_max_ms then late_max_ms = -wait end
    end
    if wait <= 0 then return 0 end
    return math.floor(wait + 0.5)
  end
end

function response(status, hdrs, body)
  if status == 200 and string.sub(body, 1, 9) == '{"code":0' then
    sent_ok = sent_ok + 1
  else
    sent_refused = sent_refused + 1
  end
end

function done(summary, latency, requests)
  local ok, refused, lates, worst, all_slots = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (t:get("sent_ok") or 0)
    refused = refused + (t:get("sent_refused") or 0)
    lates = lates + (t:get("late") or 0)
    all_slots = all_slots + (t:get("slots") or 0)
    worst = math.max(worst, t:get("late_max_ms") or 0)
  end
  io.write(string.format("TWIN ok=%d refused=%d\n", ok, refused))
  io.write(string.format("TWIN slots=%d late=%d late_max_ms=%.1f\n", all_slots, lates, worst))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("TWIN p%g=%.3f\n", p, latency:percentile(p) / 1000.0))
  end
end
