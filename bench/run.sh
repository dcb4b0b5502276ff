#!/usr/bin/env bash
# Token API benchmark, run from anywhere: bench/run.sh
#   (a) pgbench -S (the standard select-only test, prepared statements) at
#       scale LINKS/100,000, in the same PostgreSQL cluster;
#   (b) wrk: POST /api/v1/links/{random id}/token, after a warm-up that asks
#       for every link once;
#   (c) for LINKS <= 100,000: a bare net/http handler serving the same bytes
#       as (b), the ceiling of any HTTP service on this machine.
# `web serve` runs with its default settings (no GOMEMLIMIT: it sets its own
# Go memory limit from MEMORY_LIMIT_MB). Prints the figures and the table row
# | links | token API | p99 | peak RSS | pgbench -S | ratio |, then runs the
# 3-instance exactly-one-refresh test.
# Env: DURATION (default 15), LINKS (100000, up to 1000000), CONNS (32),
# PG_BUFFERS (PostgreSQL's shared_buffers, 256MB), PPROF_ADDR (profile the service; with PROFILE_DIR, CPU and heap profiles
# of (b) are kept there), SERVE_ENV (extra "K=V K=V" for web serve).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15}
LINKS=${LINKS:-100000}
CONNS=${CONNS:-32}
PORT=${PORT:-18080}
BARE_PORT=$((PORT + 1))
if [ "$LINKS" -lt 1 ] || [ "$LINKS" -gt 1000000 ]; then echo "LINKS must be 1..1000000"; exit 2; fi
SCALE=$(( (LINKS + 99999) / 100000 ))
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
go build -o "$WORK/barehttp" ./bench/cmd/barehttp

echo "== starting PostgreSQL and the Tesla simulator, seeding $LINKS links"
"$WORK/benchsetup" -dir "$WORK" -links "$LINKS" -shared-buffers "${PG_BUFFERS:-256MB}" -public-url "http://127.0.0.1:$PORT" >"$WORK/setup.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 1200); do [ -e "$WORK/ready" ] && break; sleep 0.5; done
[ -e "$WORK/ready" ] || { cat "$WORK/setup.log"; exit 1; }
grep -E "seeded|pgbench" "$WORK/setup.log" | sed 's/^[0-9/: ]*//' || true
# shellcheck disable=SC1091
source "$WORK/bench.env"

echo "== pgbench -i at scale $SCALE (in its own database of the same cluster)"
pgbench -i -q -s "$SCALE" "$PGBENCH_URL" >"$WORK/pgbench-init.out" 2>&1 || { cat "$WORK/pgbench-init.out"; exit 1; }

echo "== starting the service (web serve, default settings${SERVE_ENV:+, $SERVE_ENV})"
# RATE_LIMIT_API=0: the benchmark is one client asking as fast as it can.
# shellcheck disable=SC2086
METRICS_PORT=$((PORT + 2))
env -u GOMEMLIMIT RATE_LIMIT_API=0 METRICS_ADDR=127.0.0.1:$METRICS_PORT PPROF_ADDR=${PPROF_ADDR:-} ${SERVE_ENV:-} "$WORK/web" serve --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
pids+=($SERVE_PID)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
code=$(curl -s -o "$WORK/one.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $BENCH_KEY" \
  "http://127.0.0.1:$PORT/api/v1/links/$(head -1 "$BENCH_IDS")/token")
[ "$code" = 200 ] || { echo "token endpoint answered $code"; cat "$WORK/one.json"; tail -20 "$WORK/serve.log"; exit 1; }

echo "== (a) pgbench -S: scale $SCALE, $CONNS clients, ${DURATION}s"
pgbench -n -S -M prepared -c "$CONNS" -j 2 -T "$DURATION" "$PGBENCH_URL" >"$WORK/pgbench.out" 2>&1 ||
  { cat "$WORK/pgbench.out"; exit 1; }
PG_TPS=$(awk -F'= ' '/^tps/ {split($2, a, " "); print a[1]; exit}' "$WORK/pgbench.out")
PG_LAT=$(awk -F'= ' '/^latency average/ {split($2, a, " "); print a[1]; exit}' "$WORK/pgbench.out")

echo "== warm-up of the service: every link asked for once"
start=$(date +%s)
WARM_DONE="$WORK/warm" wrk -t2 -c"$CONNS" -d900s -s bench/warm.lua "http://127.0.0.1:$PORT" >/dev/null &
WRK_PID=$!
while kill -0 "$WRK_PID" 2>/dev/null && ! { [ -e "$WORK/warm.0" ] && [ -e "$WORK/warm.1" ]; }; do sleep 0.5; done
kill "$WRK_PID" 2>/dev/null || true
wait "$WRK_PID" 2>/dev/null || true
echo "   took $(( $(date +%s) - start ))s"
RSS_WARM_KB=$(awk '/VmRSS/ {print $2}' "/proc/$SERVE_PID/status")
metric() { curl -s "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v m="$1" '$1==m {printf "%d\n", $2}'; }
HITS0=$(metric teslalink_token_cache_hits_total); MISSES0=$(metric teslalink_token_cache_misses_total)

echo "== (b) wrk: $CONNS connections, ${DURATION}s, POST /api/v1/links/{random id}/token"
PROF_PID=""
if [ -n "${PPROF_ADDR:-}" ] && [ -n "${PROFILE_DIR:-}" ]; then # a CPU profile of (b), kept in PROFILE_DIR
  mkdir -p "$PROFILE_DIR"
  curl -s -o "$PROFILE_DIR/cpu.pprof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=$(( DURATION > 4 ? DURATION - 2 : 2 ))" &
  PROF_PID=$!
fi
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/token.lua "http://127.0.0.1:$PORT" >"$WORK/wrk.out"
if [ -n "$PROF_PID" ]; then
  wait "$PROF_PID" || true
  curl -s -o "$PROFILE_DIR/allocs.pprof" "http://$PPROF_ADDR/debug/pprof/allocs"
  curl -s -o "$PROFILE_DIR/heap.pprof" "http://$PPROF_ADDR/debug/pprof/heap"
  cp "$WORK/web" "$PROFILE_DIR/web"
fi
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v+0} else {sub(/s/,"",v); print v*1000} }'; }
WRK_RPS=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
WRK_P50=$(ms "$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")")
WRK_P99=$(ms "$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")")
NON2XX=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.out")
ERRS=$(grep -E "Socket errors" "$WORK/wrk.out" || true)
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE_PID/status")
HITS=$(( $(metric teslalink_token_cache_hits_total) - HITS0 )); MISSES=$(( $(metric teslalink_token_cache_misses_total) - MISSES0 ))
if [ -n "${PPROF_ADDR:-}" ]; then
  curl -s "http://$PPROF_ADDR/debug/pprof/heap?debug=1" | grep -E "^# (HeapInuse|Sys|NumGC) " >"$WORK/heap.txt" || true
fi
kill "$SERVE_PID" 2>/dev/null || true
wait "$SERVE_PID" 2>/dev/null || true

BARE_RPS=""
if [ "$LINKS" -le 100000 ]; then
  echo "== (c) wrk against a bare net/http handler serving the same $(wc -c <"$WORK/one.json") bytes"
  "$WORK/barehttp" -addr "127.0.0.1:$BARE_PORT" -body "$WORK/one.json" &
  pids+=($!)
  for _ in $(seq 1 50); do curl -fs -X POST "http://127.0.0.1:$BARE_PORT/" >/dev/null 2>&1 && break; sleep 0.1; done
  wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/token.lua "http://127.0.0.1:$BARE_PORT" >"$WORK/bare.out"
  BARE_RPS=$(awk '/^Requests\/sec/ {print $2}' "$WORK/bare.out")
fi

RATIO=$(awk -v b="$WRK_RPS" -v a="$PG_TPS" 'BEGIN{printf "%.2f", b/a}')
echo
echo "================ results ($(nproc) CPUs, $LINKS links, $CONNS connections, ${DURATION}s each)"
printf "(a) pgbench -S, scale %-7s : %10.0f tps   latency avg %6.2f ms\n" "$SCALE" "$PG_TPS" "$PG_LAT"
printf "(b) token API (wrk)          : %10.0f req/s p50 %6.2f ms   p99 %6.2f ms\n" "$WRK_RPS" "$WRK_P50" "$WRK_P99"
printf "ratio (b)/(a)                : %10s\n" "$RATIO"
[ -n "$BARE_RPS" ] && printf "(c) bare net/http, same bytes: %10.0f req/s; ratio (b)/(c) %.2f\n" "$BARE_RPS" \
  "$(awk -v b="$WRK_RPS" -v c="$BARE_RPS" 'BEGIN{print b/c}')"
printf "service RSS after warm-up    : %10.1f MB; peak (VmHWM) %.1f MB\n" "$(awk -v k="$RSS_WARM_KB" 'BEGIN{print k/1024}')" \
  "$(awk -v k="$RSS_KB" 'BEGIN{print k/1024}')"
printf "token cache during (b)       : %10s hits, %s misses\n" "$HITS" "$MISSES"
[ -s "$WORK/heap.txt" ] && sed 's/^# /Go runtime: /' "$WORK/heap.txt"
[ -n "$NON2XX" ] && echo "WARNING: $NON2XX non-2xx answers during (b)"
[ -n "$ERRS" ] && echo "WARNING: $ERRS"
echo
echo "| links | token API | p99 | peak RSS | pgbench -S | ratio |"
echo "|---|---|---|---|---|---|"
printf "| %s | %.0f req/s | %.1f ms | %.0f MB | %.0f tps | %s |\n" \
  "$(printf "%'d" "$LINKS" 2>/dev/null || echo "$LINKS")" "$WRK_RPS" "$WRK_P99" "$(awk -v k="$RSS_KB" 'BEGIN{print k/1024}')" "$PG_TPS" "$RATIO"
echo

if [ "${SKIP_REFRESH_TEST:-}" != 1 ]; then
  echo "== 200 concurrent token requests for one expired link over 3 instances (go test)"
  go test -count=1 -run 'TestAPIConcurrentRefreshOneCall$' -v ./internal/handlers/ | grep -E '^(--- |ok|FAIL)'
fi
