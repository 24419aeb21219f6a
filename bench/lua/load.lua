-- wrk script: the bearer token from BENCH_TOKEN, requests spread over the seeded layout
-- (bench/seed.py): BENCH_MODE = baseline | banner | details, BENCH_SUBJECTS, BENCH_FLAGS.
local mode = os.getenv("BENCH_MODE") or "baseline"
local subjects = tonumber(os.getenv("BENCH_SUBJECTS") or "100000")
local flags = tonumber(os.getenv("BENCH_FLAGS") or "10000")
local token = os.getenv("BENCH_TOKEN") or ""
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Accept"] = "application/json"
end

local function subject_path(i)
  if i % 10 == 0 then
    return "/api/v1/subjects/property/" .. string.format("%d", 100000000000 + i) .. "/banner"
  end
  return "/api/v1/subjects/customer/" .. string.format("CRM-%07d", i) .. "/banner"
end

function request()
  if mode == "banner" then
    return wrk.format("GET", subject_path(math.random(0, subjects - 1)))
  elseif mode == "details" then
    local k = math.random(0, flags - 1)
    return wrk.format("GET", "/api/v1/flags/" .. string.format("fa%030d", k) .. "/details")
  end
  return wrk.format("GET", "/bench/baseline")
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
