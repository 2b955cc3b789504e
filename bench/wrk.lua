-- Sends pre-signed webhook deliveries with unique event ids, read from the file named by
-- HG_SPEC (written by bench/run.py): path, signature header, up to two extra headers, the body
-- around the id, then one line per request: id, signature, extra header values.
--
-- With several wrk threads (-tN), HG_SPEC holds "%d": thread k (0-based, in the order wrk sets
-- them up) reads the file with k in its place, so every thread sends its own slice of ids.
local lines, n, i = {}, 0, 0
-- A global, not a local: done() reads it from each thread with thread:get("wraps"), which
-- sees only globals (a local here always read back as 0, so reused ids passed unnoticed).
wraps = 0
local head, prefix, middle, pad, suffix, sigh, x1, x2
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  -- A global of that thread's own Lua state, read by its init().
  thread:set("tid", #threads - 1)
end

function init(args)
  local spec = os.getenv("HG_SPEC")
  if spec:find("%%d") then spec = spec:gsub("%%d", tostring(tid or 0)) end
  local f = assert(io.open(spec, "r"))
  local path = f:read("*l"); sigh = f:read("*l"); x1 = f:read("*l"); x2 = f:read("*l")
  prefix = f:read("*l"); middle = f:read("*l")
  pad = string.rep("x", tonumber(f:read("*l"))); suffix = f:read("*l")
  -- Lines are split when sent, not here: init runs before the clock starts but one thread
  -- after another, so a slow init delays the whole run.
  for line in f:lines() do
    n = n + 1
    lines[n] = line
  end
  f:close()
  local host = wrk.headers["Host"] or (wrk.host .. ":" .. tostring(wrk.port))
  head = "POST " .. path .. " HTTP/1.1\r\nHost: " .. host ..
         "\r\nContent-Type: application/json\r\n"
end

function request()
  i = i + 1
  if i > n then i = 1; wraps = wraps + 1 end
  local id, sig, e1, e2 = lines[i]:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
  local body = prefix .. id .. middle .. pad .. suffix
  local h = head
  if sigh ~= "-" then h = h .. sigh .. ": " .. sig .. "\r\n" end
  if x1 ~= "-" then h = h .. x1 .. ": " .. e1 .. "\r\n" end
  if x2 ~= "-" then h = h .. x2 .. ": " .. e2 .. "\r\n" end
  return h .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("wraps") or 0) end
  io.write(string.format("HG wraps %d\n", total))
  io.write(string.format("HG p50 %.1f p99 %.1f\n", latency:percentile(50), latency:percentile(99)))
end
