-- Sends pre-signed webhook deliveries with unique event ids, read from the file named by
-- HG_SPEC (written by bench/run.py): path, signature header, up to two extra headers, the body
-- around the id, then one line per request: id, signature, extra header values.
local reqs, n, i = {}, 0, 0
-- A global, not a local: done() reads it from each thread with thread:get("wraps"), which
-- sees only globals (a local here always read back as 0, so reused ids passed unnoticed).
wraps = 0
local path, sigh, x1, x2, prefix, middle, pad, suffix
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("HG_SPEC"), "r"))
  path = f:read("*l"); sigh = f:read("*l"); x1 = f:read("*l"); x2 = f:read("*l")
  prefix = f:read("*l"); middle = f:read("*l")
  pad = string.rep("x", tonumber(f:read("*l"))); suffix = f:read("*l")
  for line in f:lines() do
    local id, sig, e1, e2 = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)")
    n = n + 1
    reqs[n] = { id, sig, e1, e2 }
  end
  f:close()
end

function request()
  i = i + 1
  if i > n then i = 1; wraps = wraps + 1 end
  local r = reqs[i]
  local headers = { ["Content-Type"] = "application/json" }
  if sigh ~= "-" then headers[sigh] = r[2] end
  if x1 ~= "-" then headers[x1] = r[3] end
  if x2 ~= "-" then headers[x2] = r[4] end
  return wrk.format("POST", path, headers, prefix .. r[1] .. middle .. pad .. suffix)
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get("wraps") or 0) end
  io.write(string.format("HG wraps %d\n", total))
  io.write(string.format("HG p50 %.1f p99 %.1f\n", latency:percentile(50), latency:percentile(99)))
end
