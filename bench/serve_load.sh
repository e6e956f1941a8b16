#!/usr/bin/env bash
# serve_load.sh: load benchmark of `minnow serve` on loopback, bounded in time.
#
# Usage: bench/serve_load.sh MINNOW_BIN MODEL.gguf [SECONDS_PER_LEVEL=10] [LEVELS="1 4 16 64"]
#        (env: THREADS, CTX=512, PARALLEL=16, MAX_TOKENS=64, KV_MB (optional), PREFIX=1 to also run
#         the shared-prefix TTFT test)
# Starts the server on a free port with --parallel $PARALLEL, records its RSS (VmRSS) after a
# warm-up that keeps every slot busy for 2 s, runs bench/serve_load.mjs at each concurrency level, records RSS again after the
# load has ended, runs the prefix test, and stops the server with SIGTERM (must exit 0).
# Prints one JSON line per level plus summary lines; never gates anything.
set -u
BIN=${1:?minnow binary}
MODEL=${2:?model.gguf}
SECS=${3:-10}
LEVELS=${4:-"1 4 16 64"}
HERE=$(cd "$(dirname "$0")" && pwd)
CTX=${CTX:-512}
PARALLEL=${PARALLEL:-16}
MAX_TOKENS=${MAX_TOKENS:-64}
LOG=$(mktemp)
EXTRA=()
[ -n "${THREADS:-}" ] && EXTRA+=(-t "$THREADS")
[ -n "${KV_MB:-}" ] && EXTRA+=(--kv-memory "$KV_MB")

"$BIN" serve -m "$MODEL" --port 0 -c "$CTX" --parallel "$PARALLEL" --max-queue 256 -q "${EXTRA[@]}" >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; rm -f "$LOG"' EXIT
PORT=""
for _ in $(seq 1 600); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG" | head -1)
    [ -n "$PORT" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" = 200 ] && break
    sleep 0.1
done
BASE="http://127.0.0.1:$PORT"
grep 'ready' "$LOG"
rss() { awk '/VmRSS/ { print $2 }' "/proc/$PID/status"; }

# warm-up: every slot busy for a moment, so that lazily touched pages (KV blocks, scratch, the
# first connection threads' heap) are in place before the "before" RSS is taken
node "$HERE/serve_load.mjs" --base "$BASE" --clients "$PARALLEL" --seconds 2 --max-tokens "$MAX_TOKENS" --json >/dev/null
RSS0=$(rss)
echo "rss_before_kb $RSS0"
for c in $LEVELS; do
    node "$HERE/serve_load.mjs" --base "$BASE" --clients "$c" --seconds "$SECS" --max-tokens "$MAX_TOKENS" --json
done
sleep 1
RSS1=$(rss)
echo "rss_after_kb $RSS1 ($(awk -v a="$RSS0" -v b="$RSS1" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }'))"
if [ "${PREFIX:-1}" = 1 ]; then
    node "$HERE/serve_load.mjs" --base "$BASE" --prefix-test --prefix-tokens "${PREFIX_TOKENS:-1000}" --json
fi
curl -s "$BASE/metrics" | grep -E '^minnow_(prefix_cache_hit_tokens_total|prompt_tokens_total|preemptions_total|forward_passes_total|generated_tokens_total) '
kill -TERM "$PID"
wait "$PID"
echo "server exit code $?"
trap 'rm -f "$LOG"' EXIT
