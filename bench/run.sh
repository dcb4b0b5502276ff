#!/usr/bin/env bash
# Token broker benchmark. Run from anywhere: bench/run.sh
#   (a) pgbench: single-row reads of the links table, 32 clients, prepared statements
#   (b) wrk: POST /api/v1/links/{random id}/token, 32 connections
# over 100,000 seeded links, then prints throughput, p50/p99, the ratio
# (b)/(a) and the service's peak RSS; finally runs the 3-instance
# exactly-one-refresh test. Env: DURATION (default 15), LINKS (100000), CONNS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
LINKS=${LINKS:-100000}
CONNS=${CONNS:-32}
PORT=${PORT:-18080}
WORK=$(mktemp -d /tmp/teslalink-bench.XXXXXX)
chmod 755 "$WORK"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y wrk >/dev/null; }
command -v pgbench >/dev/null || { echo "pgbench is required (PostgreSQL client tools)"; exit 1; }

echo "== building"
go build -o "$WORK/web" ./cmd/web
go build -o "$WORK/benchsetup" ./bench/cmd/benchsetup

echo "== starting PostgreSQL and the Tesla simulator, seeding $LINKS links"
"$WORK/benchsetup" -dir "$WORK" -links "$LINKS" -public-url "http://127.0.0.1:$PORT" >"$WORK/setup.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -e "$WORK/ready" ] && break; sleep 0.5; done
[ -e "$WORK/ready" ] || { cat "$WORK/setup.log"; exit 1; }
grep seeded "$WORK/setup.log" || true
# shellcheck disable=SC1091
source "$WORK/bench.env"

echo "== starting the service (web serve, DB_MAX_CONNS=$CONNS, GOMEMLIMIT=${GOMEMLIMIT:-64MiB})"
RATE_LIMIT_API=0 GOMEMLIMIT=${GOMEMLIMIT:-64MiB} PPROF_ADDR=${PPROF_ADDR:-} DB_MAX_CONNS=$CONNS "$WORK/web" serve --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
pids+=($SERVE_PID)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
code=$(curl -s -o "$WORK/one.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $BENCH_KEY" \
  "http://127.0.0.1:$PORT/api/v1/links/$(head -1 "$BENCH_IDS")/token")
[ "$code" = 200 ] || { echo "token endpoint answered $code"; cat "$WORK/one.json"; tail -20 "$WORK/serve.log"; exit 1; }

echo "== (a) pgbench: $CONNS clients, ${DURATION}s, single-row reads of links"
(cd "$WORK" && pgbench -n -M prepared -c "$CONNS" -j 2 -T "$DURATION" -l -f "$OLDPWD/bench/select.sql" "$DATABASE_URL" >"$WORK/pgbench.out" 2>&1) ||
  { cat "$WORK/pgbench.out"; exit 1; }
PG_TPS=$(awk -F'= ' '/^tps/ {split($2, a, " "); print a[1]; exit}' "$WORK/pgbench.out")
read -r PG_P50 PG_P99 < <(cat "$WORK"/pgbench_log.* | awk '{print $3}' | sort -n |
  awk '{v[NR]=$1} END {printf "%.2f %.2f\n", v[int(NR*0.50)]/1000, v[int(NR*0.99)]/1000}')

WARM=${WARM:-$(( LINKS / 8000 + 3 ))}
echo "== warm-up of the service (${WARM}s: every link asked for about once, so the token cache is warm)"
wrk -t2 -c"$CONNS" -d"${WARM}s" -s bench/warm.lua "http://127.0.0.1:$PORT" >/dev/null

echo "== (b) wrk: $CONNS connections, ${DURATION}s, POST /api/v1/links/{random id}/token"
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/token.lua "http://127.0.0.1:$PORT" >"$WORK/wrk.out"
WRK_RPS=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v+0} else {sub(/s/,"",v); print v*1000} }'; }
WRK_P50=$(ms "$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")")
WRK_P99=$(ms "$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")")
NON2XX=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.out")
ERRS=$(grep -E "Socket errors" "$WORK/wrk.out" || true)
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")

echo
echo "================ results ($(nproc) CPUs, $LINKS links, $CONNS connections, ${DURATION}s each)"
printf "(a) pgbench single-row reads : %10.0f tps   p50 %6.2f ms   p99 %6.2f ms\n" "$PG_TPS" "$PG_P50" "$PG_P99"
printf "(b) token endpoint (wrk)     : %10.0f req/s p50 %6.2f ms   p99 %6.2f ms\n" "$WRK_RPS" "$WRK_P50" "$WRK_P99"
printf "ratio (b)/(a)                : %10.2f   (target >= 0.5)\n" "$(awk -v b="$WRK_RPS" -v a="$PG_TPS" 'BEGIN{print b/a}')"
printf "p99 of (b)                   : %10.2f ms (target < 20 ms)\n" "$WRK_P99"
printf "service peak RSS (VmHWM)     : %10.1f MB (target < 100 MB)\n" "$(awk -v k="$RSS_KB" 'BEGIN{print k/1024}')"
[ -n "$NON2XX" ] && echo "WARNING: $NON2XX non-2xx answers during (b)"
[ -n "$ERRS" ] && echo "WARNING: $ERRS"
echo

kill "$SERVE_PID" 2>/dev/null || true
echo "== 200 concurrent token requests for one expired link over 3 instances (go test)"
go test -count=1 -run 'TestAPIConcurrentRefreshOneCall$' -v ./internal/handlers/ | grep -E '^(--- |ok|FAIL)'
