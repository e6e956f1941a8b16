# queue.sh: BAD_INPUTS row 37: with --parallel 1 --max-queue 1, one request runs, one waits, and
# every further one gets 503 with Retry-After (never unbounded growth); once the load is gone the
# server accepts again. Also row 41's per-request side: a request that needs more KV memory than
# the whole pool gets a clean 503, and the server keeps serving.
#
# Load-proof: the running request is ~2000 tokens (seconds of decoding even on an idle machine),
# so the slot and the queue surely stay full during the burst (checked: the first stream has not
# ended when the burst is answered); states are polled for with generous deadlines, never assumed
# after a sleep; the idle-timeout window is measured, with a wide upper bound.
. "$(dirname "$0")/lib/common.bash"
make_model_15m
start_server -c 2048 --parallel 1 --max-queue 1

queued_is() { [ "$(metric minnow_queue_depth)" = "$1" ]; }
LONG='{"prompt":"Once upon a time","max_tokens":2000,"temperature":0,"stream":true}'
sse_stream "$LONG" "$TMP/a.sse"
PA=$SSE_PID
wait_for "first stream running" 60 grep -q '"text"' "$TMP/a.sse"
sse_stream '{"prompt":"Once upon a time","max_tokens":32,"temperature":0,"stream":true}' "$TMP/b.sse"
PB=$SSE_PID
wait_for "second request queued" 60 queued_is 1
# a burst of 20 more, all at once
for i in $(seq 1 20); do
    curl -s -D "$TMP/h$i" -o "$TMP/b$i" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"prompt":"x","max_tokens":5}' "$BASE/v1/completions" >"$TMP/s$i" &
done
wait $(jobs -p | grep -v "^$SERVER_PID\$" | grep -v "^$PA\$" | grep -v "^$PB\$")
! grep -q '\[DONE\]' "$TMP/a.sse" && ! grep -q '"text"' "$TMP/b.sse"
check "the first stream still ran and the second still waited when the burst was answered" $?
N503=0
for i in $(seq 1 20); do
    if [ "$(cat "$TMP/s$i")" = 503 ] && grep -qi '^Retry-After: [0-9]' "$TMP/h$i" && [ "$(jq -r .error.code "$TMP/b$i")" = queue_full ]; then
        N503=$((N503 + 1))
    fi
done
[ "$N503" = 20 ]; check "burst of 20 beyond parallel + queue: 20 x 503 with Retry-After and code queue_full (got $N503)" $?
wait "$PA" "$PB"
tail -c 14 "$TMP/a.sse" | grep -q 'DONE' && tail -c 14 "$TMP/b.sse" | grep -q 'DONE'
check "the running and the queued request both completed" $?
req POST /v1/completions '{"prompt":"x","max_tokens":5}'
expect_status 200 "accepting again after the load"
grep -q 'minnow_requests_total{endpoint="completions",status="503"} 20' <(curl -s "$BASE/metrics")
check "503s counted in metrics" $?
stop_server

# row 33 vs long waits: with a 2 s idle timeout, requests queued for longer than that are still
# answered (waiting for a slot is not idleness), while an idle keep-alive connection is closed
start_server -c 2048 --parallel 1 --max-queue 4 --timeout 2
MID='{"prompt":"Once upon a time","max_tokens":1000,"temperature":0,"stream":true}'
sse_stream "$MID" "$TMP/t1.sse"
T1=$SSE_PID
wait_for "first stream running" 60 grep -q '"text"' "$TMP/t1.sse"
sse_stream "$MID" "$TMP/t2.sse"
T2=$SSE_PID
wait_for "second stream queued" 60 queued_is 1
R=$(curl -s -o "$TMP/body" -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
    -d '{"prompt":"Once upon a time","max_tokens":1000,"temperature":0}' "$BASE/v1/completions")
STATUS=${R% *}
WAITED=${R#* }
BODY=$(cat "$TMP/body")
expect_status 200 "non-stream request queued behind two long streams is answered"
awk -v t="$WAITED" 'BEGIN { exit !(t > 2.5) }'; check "it waited longer than the 2 s idle timeout without a byte ($WAITED s)" $?
wait "$T1" "$T2"
tail -c 14 "$TMP/t2.sse" | grep -q 'DONE'; check "queued stream (> 2 s without bytes) completed" $?
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
T0=$(date +%s.%N)
timeout 60 cat <&3 >/dev/null
T1=$(date +%s.%N)
exec 3>&-
IDLE=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
awk -v t="$IDLE" 'BEGIN { exit !(t >= 1 && t < 30) }'
check "idle connection closed by the server after the idle timeout ($IDLE s; not before 1 s, well before cat's 60 s)" $?
stop_server

# a KV pool of 1 MB: the context shrinks to fit it (mn_context), so a request for 480 tokens is
# refused up front with a clean error, and the server keeps serving
start_server -c 512 --parallel 1 --kv-memory 1
post /v1/completions '{"prompt":"Once upon a time","max_tokens":480,"temperature":0}'
[ "$STATUS" = 503 ] || [ "$STATUS" = 400 ]; check "request larger than the memory-capped context refused cleanly (HTTP $STATUS: $(jqb .error.message))" $?
post /v1/completions '{"prompt":"Once","max_tokens":2}'
expect_status 200 "small request still served"

finish
