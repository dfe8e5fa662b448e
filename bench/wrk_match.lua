-- wrk script for bench/wrk_match.py: POSTs prepared multipart bodies round-robin and counts statuses
-- (with the error code for 4xx/5xx, e.g. 503/overloaded).
-- Arguments after --: folder with body1.bin..bodyN.bin, N, API key, multipart boundary, and the ai-server's
-- shared secret for runs straight at it (empty through the gateway).
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter)
  table.insert(threads, thread)
end

function init(args)
  local folder, n = args[1], tonumber(args[2])
  bodies = {}
  for j = 1, n do
    local f = assert(io.open(folder .. "/body" .. j .. ".bin", "rb"))
    bodies[j] = f:read("*all")
    f:close()
  end
  headers = {
    ["Content-Type"] = "multipart/form-data; boundary=" .. args[4],
    ["X-API-Key"] = args[3],
  }
  if args[5] and args[5] ~= "" then
    headers["Authorization"] = "Bearer " .. args[5]
  end
  i = offset * 7
  statuses = {}
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", wrk.path, headers, bodies[i])
end

function response(status, hdrs, body)
  local key = tostring(status)
  if status >= 400 then
    key = key .. "/" .. (body:match('"code":%s*"([%w_]+)"') or "?")
  end
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %s %d\n", code, count))
    end
  end
  local e = summary.errors
  io.write(string.format("stat requests %d\nstat duration_us %d\n", summary.requests, summary.duration))
  io.write(string.format("stat err_connect %d\nstat err_read %d\nstat err_write %d\n", e.connect, e.read, e.write))
  io.write(string.format("stat err_status %d\nstat err_timeout %d\n", e.status, e.timeout))
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("stat p%d_us %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("stat max_us %d\nstat mean_us %d\n", latency.max, latency.mean))
end
