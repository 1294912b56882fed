-- wrk requests for scripts/bench-serve: a random stream and a random
-- moment of the synthetic archive each time. BENCH_KIND is "range"
-- (archive.m3u8 for BENCH_SPAN hours), "hour" (one hour's playlist) or
-- "ranges" (the recorded ranges of the whole archive).
math.randomseed(os.time())
local kind = os.getenv("BENCH_KIND")
local streams = tonumber(os.getenv("BENCH_STREAMS"))
local first = tonumber(os.getenv("BENCH_FIRST"))
local hours = tonumber(os.getenv("BENCH_HOURS"))
local span = tonumber(os.getenv("BENCH_SPAN"))

-- A random moment at least BENCH_SPAN hours before the archive's end.
local function moment()
  return first + math.random(0, (hours - span) * 3600 - 1)
end

request = function()
  local stream = string.format("s%02d", math.random(0, streams - 1))
  local path
  if kind == "ranges" then
    path = string.format("/streams/%s/ranges?start=%s&end=%s", stream,
      os.date("!%Y-%m-%dT%H:%M:%SZ", first), os.date("!%Y-%m-%dT%H:%M:%SZ", first + hours * 3600))
  elseif kind == "range" then
    path = string.format("/streams/%s/archive.m3u8?start=%s&duration=%dh",
      stream, os.date("!%Y-%m-%dT%H:%M:%SZ", moment()), span)
  else
    path = string.format("/streams/%s/%s/index.m3u8", stream, os.date("!%Y/%m/%d/%H", moment()))
  end
  return wrk.format("GET", path)
end
