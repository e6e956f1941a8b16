# signals.sh: BAD_INPUTS rows 40 and 43: SIGTERM/SIGINT mid-stream stop accepting, let in-flight
# requests finish (or, past --drain-timeout, end them with an error event and [DONE]), and exit 0;
# a client closing its socket mid-write (SIGPIPE) does not kill the server.
. "$(dirname "$0")/lib/common.bash"
make_model_15m

LONG='{"prompt":"Once upon a time","max_tokens":300,"temperature":0,"stream":true}'

# ---- SIGTERM with enough drain time: the stream runs to its end
start_server -c 512 --parallel 2 --drain-timeout 30
sse_stream "$LONG" "$TMP/a.sse"
PA=$SSE_PID
wait_for "stream running" 20 grep -q '"text"' "$TMP/a.sse"
kill -TERM "$SERVER_PID"
sleep 0.3
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/health")
[ "$STATUS" != 200 ]; check "no new requests served after SIGTERM (got $STATUS)" $?
wait "$PA"
tail -c 14 "$TMP/a.sse" | grep -q '\[DONE\]' && grep -q '"finish_reason":"length"' "$TMP/a.sse"
check "in-flight stream finished normally with [DONE]" $?
wait "$SERVER_PID"
RC=$?
SERVER_PID=""
[ "$RC" = 0 ]; check "exit 0 after SIGTERM (got $RC)" $?

# ---- SIGINT with no drain time: the stream is cut with an error event, then [DONE]
start_server -c 512 --parallel 2 --drain-timeout 0
sse_stream "$LONG" "$TMP/b.sse"
PB=$SSE_PID
wait_for "stream running" 20 grep -q '"text"' "$TMP/b.sse"
kill -INT "$SERVER_PID"
wait "$PB"
grep -q '^data: {"error"' "$TMP/b.sse" && tail -c 14 "$TMP/b.sse" | grep -q '\[DONE\]' && ! grep -q '"finish_reason":"length"' "$TMP/b.sse"
check "aborted stream ends with an error event and [DONE]" $?
T0=$(date +%s)
wait "$SERVER_PID"
RC=$?
SERVER_PID=""
[ "$RC" = 0 ]; check "exit 0 after SIGINT (got $RC)" $?

# ---- SIGPIPE: clients that vanish mid-write, many times
start_server -c 512 --parallel 2
for i in $(seq 1 10); do
    curl -sN --max-time 0.2 -H 'Content-Type: application/json' -d "$LONG" "$BASE/v1/completions" >/dev/null 2>&1
done
req GET /health
expect_status 200 "alive after 10 clients vanished mid-stream"
finish
