-- wrk script of benchmarks/webhooks.py: sends METHOD with BODY (JSON) and counts the answers that
-- are a 200 carrying EXPECT (when given; spaces in the answer ignored) as good, the others as
-- bad, per thread. When the run is over it prints the counts and every latency wrk recorded
-- (value in microseconds and how many requests took it), for webhooks.py to read.
--   wrk -t2 -c10 -d10s -s webhooks.lua URL -- METHOD [BODY [EXPECT]]
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good, bad = 0, 0
  wrk.method = args[1] or "GET"
  if args[2] and args[2] ~= "" then
    wrk.body = args[2]
    wrk.headers["Content-Type"] = "application/json"
  end
  expect = args[3]
end

function response(status, headers, body)
  if status == 200 and (expect == nil or string.find(body:gsub(" ", ""), expect, 1, true)) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local good_total, bad_total = 0, 0
  for _, thread in ipairs(threads) do
    good_total = good_total + thread:get("good")
    bad_total = bad_total + thread:get("bad")
  end
  local errors = summary.errors
  io.write(string.format("answers %d %d %d %d\n", good_total, bad_total,
    errors.connect + errors.read + errors.write, errors.timeout))
  for i = 1, #latency do
    local value, count = latency(i)
    io.write(string.format("latency %d %d\n", value, count))
  end
end
