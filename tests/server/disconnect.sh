# disconnect.sh: BAD_INPUTS row 36 and the issue's "a client that disconnects mid-stream frees its
# sequence and KV blocks at once": clients that go away mid-stream, during prefill and while
# queued are cancelled within a step (minnow_cancelled_sequences_total counts them, running
# sequences and used KV blocks drop back), and a concurrent client's greedy output is unaffected.
#
# Load-proof: no step races a timer. Every client is dropped only once the server shows the state
# under test (tokens streaming, sequence admitted and still prefilling, request queued), and the
# requests are long enough (thousands of tokens, seconds of work even on an idle machine) that
# they are surely still in that state when the drop is noticed; waits poll with generous
# deadlines and cancel counts are checked relative to the count before each case.
. "$(dirname "$0")/lib/common.bash"
make_model_15m
start_server -c 4096 --parallel 2 -b 32

kv_idle() { # every block free (cached-but-idle blocks count as free)
    local m
    m=$(curl -s "$BASE/metrics")
    [ "$(awk '$1 == "minnow_running_sequences" { print $2 }' <<<"$m")" = 0 ] &&
        [ "$(awk '$1 == "minnow_kv_blocks_free" { print $2 }' <<<"$m")" = "$(awk '$1 == "minnow_kv_blocks_total" { print $2 }' <<<"$m")" ]
}
cancelled_is() { [ "$(metric minnow_cancelled_sequences_total)" = "$1" ]; }
running_is() { [ "$(metric minnow_running_sequences)" = "$1" ]; }
queued_is() { [ "$(metric minnow_queue_depth)" = "$1" ]; }

# ~4000 tokens: many seconds of decoding; every stream of it is dropped long before its end
LONG='{"prompt":"Once upon a time","max_tokens":4000,"temperature":0,"stream":true}'
# reference output of a short greedy request, served alone
post /v1/completions '{"prompt":"The cat","max_tokens":40,"temperature":0}'
REF=$(jqb '.choices[0].text')

# ---- mid-stream: read until some tokens arrived, then drop the connection
C=$(metric minnow_cancelled_sequences_total)
sse_stream "$LONG" "$TMP/a.sse"
wait_for "stream produced tokens" 60 grep -q '"text"' "$TMP/a.sse"
# a second client runs concurrently and must be unaffected
curl -s -H 'Content-Type: application/json' -d '{"prompt":"The cat","max_tokens":40,"temperature":0}' \
    "$BASE/v1/completions" >"$TMP/concurrent.json" &
CONC=$!
kill "$SSE_PID"
wait "$SSE_PID" 2>/dev/null
T0=$(date +%s.%N)
wait_for "disconnected stream cancelled" 60 cancelled_is $((C + 1))
T1=$(date +%s.%N)
echo "   cancel noticed within $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.3f", b - a }') s of the client leaving"
wait "$CONC"
[ "$(jq -r '.choices[0].text' "$TMP/concurrent.json")" = "$REF" ]; check "a concurrent client's output is unchanged" $?
wait_for "sequence and KV blocks freed" 60 kv_idle
grep -q '\[DONE\]' "$TMP/a.sse" && { check "the dropped stream did not run to the end" 1; } || check "the dropped stream did not run to the end" 0

# ---- during prefill: a ~4000-token prompt evaluated in 32-token chunks (seconds of prefill);
# the client leaves once its sequence is admitted, and must be cancelled before its first token
PROMPT=$(printf 'word %.0s' $(seq 1 4000))
BODYJ=$(jq -nc --arg p "$PROMPT" '{prompt:$p,max_tokens:50,stream:true}')
post /tokenize "$(jq -nc --arg p "$PROMPT" '{content:$p}')"
echo "   prefill prompt: $(jqb '.tokens | length') tokens"
C=$(metric minnow_cancelled_sequences_total)
G=$(metric minnow_generated_tokens_total)
sse_stream "$BODYJ" "$TMP/b.sse"
wait_for "long prompt admitted (prefilling)" 60 running_is 1
kill "$SSE_PID"
wait "$SSE_PID" 2>/dev/null
wait_for "client gone during prefill: cancelled" 60 cancelled_is $((C + 1))
[ "$(metric minnow_generated_tokens_total)" = "$G" ] && ! grep -q '"text"' "$TMP/b.sse"
check "cancelled during prefill: no token was generated ($(metric minnow_generated_tokens_total) vs $G before)" $?
wait_for "blocks freed after prefill cancel" 60 kv_idle

# ---- while queued: 2 slots busy, a third request waits, then its client leaves
sse_stream "$LONG" "$TMP/c1.sse"
P1=$SSE_PID
sse_stream "$LONG" "$TMP/c2.sse"
P2=$SSE_PID
C=$(metric minnow_cancelled_sequences_total)
wait_for "two streams running" 60 bash -c "grep -q '\"text\"' '$TMP/c1.sse' && grep -q '\"text\"' '$TMP/c2.sse'"
sse_stream "$LONG" "$TMP/c3.sse"
P3=$SSE_PID
wait_for "third request queued" 60 queued_is 1
kill "$P3"
wait "$P3" 2>/dev/null
wait_for "queued request cancelled (queue depth back to 0)" 60 queued_is 0
wait_for "queued cancel counted" 60 cancelled_is $((C + 1))
running_is 2; check "the two streams still run (the cancel hit the queued request)" $?
kill "$P1" "$P2" 2>/dev/null
wait "$P1" "$P2" 2>/dev/null
wait_for "all slots and blocks freed" 60 kv_idle

# ---- non-streaming request whose client leaves once it runs
C=$(metric minnow_cancelled_sequences_total)
curl -s -H 'Content-Type: application/json' -d '{"prompt":"Once upon a time","max_tokens":4000,"temperature":0}' \
    "$BASE/v1/completions" >"$TMP/nonstream.json" 2>/dev/null &
PN=$!
wait_for "non-stream request running" 60 running_is 1
kill "$PN"
wait "$PN" 2>/dev/null
wait_for "non-stream client gone: cancelled" 60 cancelled_is $((C + 1))
wait_for "blocks freed after non-stream cancel" 60 kv_idle

finish
