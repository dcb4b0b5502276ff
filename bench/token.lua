-- wrk script: POST /api/v1/links/{random id}/token with the bench API key.
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do
  if #line > 0 then ids[#ids + 1] = line end
end
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

request = function()
  return wrk.format(nil, "/api/v1/links/" .. ids[math.random(#ids)] .. "/token")
end
