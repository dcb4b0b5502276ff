#!/usr/bin/env bash
# Soak test of the service, run from anywhere: bench/soak.sh
# Bounded in time, loopback only. Seeds LINKS links (default 100,000) whose
# refresh tokens the Tesla simulator accepts (bench/cmd/benchsetup
# -sim-tokens), starts `web serve` with keep-alive working hard
# (TOKEN_KEEPALIVE_AGE=1m, KEEPALIVE_RATE=5), asks for every link once
# (warm-up), then runs SOAK_MINUTES of mixed traffic (bench/cmd/soak):
# token requests at SOAK_RATE a second on random links, forced refreshes,
# owners linking through /connect and the simulator's sign-in page and
# revoking (account page or API), and simulator faults switched on and off.
# At the end it checks: no link lost, no refresh token used twice at the
# simulator, no 5xx but 503s during faults, RSS at most 20% above the
# post-warm-up figure, goroutines flat. Exits non-zero if a check fails.
# Env: SOAK_MINUTES (10), LINKS (100000), SOAK_RATE (300), SOAK_FORCE_RATE (1),
# SOAK_FAULT_EVERY (60s), SOAK_FAULT_FOR (15s), SOAK_FAULT_PLAN (the faults, in
# turn: a JSON array of the simulator's POST /faults bodies), KEEPALIVE_RATE (5),
# PORT (18180; the metrics and profiler listen on PORT+2 and PORT+3),
# SOAK_LOGS (where the service's log is kept when a check fails, or always
# with SOAK_KEEP_LOGS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-10}
LINKS=${LINKS:-100000}
PORT=${PORT:-18180}
METRICS_ADDR=127.0.0.1:$((PORT + 2))
PPROF_ADDR=127.0.0.1:$((PORT + 3))
LOGS=${SOAK_LOGS:-/tmp/teslalink-soak-logs}
WORK=$(mktemp -d /tmp/teslalink-soak.XXXXXX)
chmod 755 "$WORK"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building"
go build -o "$WORK/web" ./cmd/web
go build -o "$WORK/benchsetup" ./bench/cmd/benchsetup
go build -o "$WORK/soak" ./bench/cmd/soak

echo "== starting PostgreSQL and the Tesla simulator, seeding $LINKS links with refresh tokens the simulator accepts"
"$WORK/benchsetup" -dir "$WORK" -links "$LINKS" -sim-tokens "$LINKS" -public-url "http://127.0.0.1:$PORT" >"$WORK/setup.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 1200); do [ -e "$WORK/ready" ] && break; sleep 0.5; done
[ -e "$WORK/ready" ] || { cat "$WORK/setup.log"; exit 1; }
grep -E "seeded|simulator accepts" "$WORK/setup.log" | sed 's/^[0-9/: ]*/   /' || true
# shellcheck disable=SC1091
source "$WORK/bench.env"

# RATE_LIMIT_API=0 and RATE_LIMIT_CONNECT=0: one API client and one client
# address make all the traffic. TESLA_TOKEN_RPS=20 leaves room above the
# soak's calls to Tesla (keep-alive, forced refreshes, logins), so its 503s
# come from the injected faults only.
echo "== starting the service (web serve; keep-alive every link older than 1m at ${KEEPALIVE_RATE:-5}/s)"
env -u GOMEMLIMIT RATE_LIMIT_API=0 RATE_LIMIT_CONNECT=0 TESLA_TOKEN_RPS=20 \
  TOKEN_KEEPALIVE_AGE=1m KEEPALIVE_RATE="${KEEPALIVE_RATE:-5}" \
  METRICS_ADDR="$METRICS_ADDR" PPROF_ADDR="$PPROF_ADDR" \
  "$WORK/web" serve --addr "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
pids+=($SERVE_PID)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { tail -20 "$WORK/serve.log"; exit 1; }

rc=0
"$WORK/soak" -url "http://127.0.0.1:$PORT" -metrics "http://$METRICS_ADDR" -pid "$SERVE_PID" \
  -duration "${MINUTES}m" -rate "${SOAK_RATE:-300}" -force-rate "${SOAK_FORCE_RATE:-1}" \
  -fault-every "${SOAK_FAULT_EVERY:-60s}" -fault-for "${SOAK_FAULT_FOR:-15s}" ${SOAK_FAULT_PLAN:+-fault-plan "$SOAK_FAULT_PLAN"} || rc=$?

echo "service: peak RSS (VmHWM) $(awk '/VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$SERVE_PID/status")"
echo "service log, WARN and ERROR lines by message:"
grep -E '"level":"(WARN|ERROR)"' "$WORK/serve.log" | sed -E 's/.*"level":"([A-Z]+)".*"msg":"([^"]*)".*/\1 \2/' | sort | uniq -c | sort -rn | head -15 || true
if [ "$rc" != 0 ] || [ "${SOAK_KEEP_LOGS:-}" = 1 ]; then
  mkdir -p "$LOGS"
  cp "$WORK/serve.log" "$WORK/setup.log" "$LOGS/"
  echo "exit $rc; the service's and the setup's logs are in $LOGS"
fi
exit "$rc"
