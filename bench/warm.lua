-- wrk warm-up script: asks for every seeded link's token once, in order
-- (each wrk thread takes every other id), then stops, so the measurement
-- starts warm, as pgbench's reads start with the table in PostgreSQL's
-- buffers.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  if #line > 0 then ids[#ids + 1] = line end
end
local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end
local sent, answered = 0, 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
request = function()
  local i = sent * 2 + (offset or 0) + 1
  sent = sent + 1
  if i > #ids then i = ((i - 1) % #ids) + 1 end
  return wrk.format(nil, "/api/v1/links/" .. ids[i] .. "/token")
end
-- wrk's main thread sleeps for the whole duration whatever its threads
-- do, so a thread that is done leaves a file for run.sh, which ends wrk.
response = function()
  answered = answered + 1
  if answered * 2 == #ids or (answered * 2 == #ids + 1) then
    io.open(os.getenv("WARM_DONE") .. "." .. offset, "w"):close()
  end
end
