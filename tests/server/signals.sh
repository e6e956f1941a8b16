# signals.sh: BAD_INPUTS rows 40 and 43: SIGTERM/SIGINT mid-stream stop accepting, let in-flight
# requests finish (or, past --drain-timeout, end them with an error event and [DONE]), and exit 0;
# a client closing its socket mid-write (SIGPIPE) does not kill the server.
#
# Load-proof: the stream is ~2000 tokens (seconds of decoding even on an idle machine), so it is
# surely still in flight when the signal lands; the drain time is generous; "stopped accepting" is
# polled for (while the stream still runs) instead of assumed after a fixed sleep; the vanishing
# clients leave only after their stream has produced tokens.
. "$(dirname "$0")/lib/common.bash"
make_model_15m

LONG='{"prompt":"Once upon a time","max_tokens":2000,"temperature":0,"stream":true}'
done_in() { tail -c 14 "$1" | grep -q '\[DONE\]'; }

# ---- SIGTERM with enough drain time: the stream runs to its end
start_server -c 2048 --parallel 2 --drain-timeout 300
sse_stream "$LONG" "$TMP/a.sse"
PA=$SSE_PID
wait_for "stream running" 60 grep -q '"text"' "$TMP/a.sse"
kill -TERM "$SERVER_PID"
# poll until a new request is refused; note whether the stream was still running when it was
REFUSED=0
RUNNING_THEN=0
for i in $(seq 1 60); do
    done_in "$TMP/a.sse" && RUN=0 || RUN=1
    STATUS=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/health")
    if [ "$STATUS" != 200 ]; then
        REFUSED=1
        RUNNING_THEN=$RUN
        break
    fi
    sleep 0.1
done
[ "$REFUSED" = 1 ] && [ "$RUNNING_THEN" = 1 ]
check "new requests refused after SIGTERM while the stream still runs (got $STATUS, stream running: $RUNNING_THEN)" $?
wait "$PA"
done_in "$TMP/a.sse" && grep -q '"finish_reason":"length"' "$TMP/a.sse" && ! grep -q '^data: {"error"' "$TMP/a.sse"
check "in-flight stream finished normally with [DONE]" $?
wait "$SERVER_PID"
RC=$?
SERVER_PID=""
[ "$RC" = 0 ]; check "exit 0 after SIGTERM (got $RC)" $?

# ---- SIGINT with no drain time: the stream is cut with an error event, then [DONE]
start_server -c 2048 --parallel 2 --drain-timeout 0
sse_stream "$LONG" "$TMP/b.sse"
PB=$SSE_PID
wait_for "stream running" 60 grep -q '"text"' "$TMP/b.sse"
kill -INT "$SERVER_PID"
wait "$PB"
grep -q '^data: {"error"' "$TMP/b.sse" && done_in "$TMP/b.sse" && ! grep -q '"finish_reason":"length"' "$TMP/b.sse"
check "aborted stream ends with an error event and [DONE]" $?
wait "$SERVER_PID"
RC=$?
SERVER_PID=""
[ "$RC" = 0 ]; check "exit 0 after SIGINT (got $RC)" $?

# ---- SIGPIPE: clients that vanish mid-stream (after tokens arrived), many times
start_server -c 2048 --parallel 2
C=$(metric minnow_cancelled_sequences_total)
for i in $(seq 1 10); do
    sse_stream "$LONG" "$TMP/p$i.sse"
    for k in $(seq 1 1200); do
        grep -q '"text"' "$TMP/p$i.sse" && break
        sleep 0.05
    done
    kill "$SSE_PID"
    wait "$SSE_PID" 2>/dev/null
done
req GET /health
expect_status 200 "alive after 10 clients vanished mid-stream"
wait_for "the 10 vanished streams were cancelled" 60 bash -c "[ \"\$(curl -s $BASE/metrics | awk '\$1 == \"minnow_cancelled_sequences_total\" { print \$2 }')\" = $((C + 10)) ]"
finish
