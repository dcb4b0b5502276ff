-- wrk warm-up script: asks for every seeded link's token once, in order
-- (each wrk thread takes every other id), so the measurement starts warm,
-- as pgbench's reads start with the table in PostgreSQL's buffers.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  if #line > 0 then ids[#ids + 1] = line end
end
local counter = 0
local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
request = function()
  counter = counter + 1
  local i = ((counter * 2 + (offset or 0)) % #ids) + 1
  return wrk.format(nil, "/api/v1/links/" .. ids[i] .. "/token")
end
