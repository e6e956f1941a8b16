# disconnect.sh: BAD_INPUTS row 36 and the issue's "a client that disconnects mid-stream frees its
# sequence and KV blocks at once": clients that go away mid-stream, during prefill and while
# queued are cancelled within a step (minnow_cancelled_sequences_total counts them, running
# sequences and used KV blocks drop back), and a concurrent client's greedy output is unaffected.
. "$(dirname "$0")/lib/common.bash"
make_model_15m
start_server -c 512 --parallel 2 -b 32

kv_idle() { # every block free (cached-but-idle blocks count as free)
    local m
    m=$(curl -s "$BASE/metrics")
    [ "$(awk '$1 == "minnow_running_sequences" { print $2 }' <<<"$m")" = 0 ] &&
        [ "$(awk '$1 == "minnow_kv_blocks_free" { print $2 }' <<<"$m")" = "$(awk '$1 == "minnow_kv_blocks_total" { print $2 }' <<<"$m")" ]
}
cancelled_is() { [ "$(metric minnow_cancelled_sequences_total)" = "$1" ]; }

LONG='{"prompt":"Once upon a time","max_tokens":480,"temperature":0,"stream":true}'
# reference output of a short greedy request, served alone
post /v1/completions '{"prompt":"The cat","max_tokens":40,"temperature":0}'
REF=$(jqb '.choices[0].text')

# ---- mid-stream: read until some tokens arrived, then drop the connection
sse_stream "$LONG" "$TMP/a.sse"
wait_for "stream produced tokens" 20 grep -q '"text"' "$TMP/a.sse"
# a second client runs concurrently and must be unaffected
curl -s -H 'Content-Type: application/json' -d '{"prompt":"The cat","max_tokens":40,"temperature":0}' \
    "$BASE/v1/completions" >"$TMP/concurrent.json" &
CONC=$!
kill "$SSE_PID"
wait "$SSE_PID" 2>/dev/null
T0=$(date +%s.%N)
wait_for "disconnected stream cancelled" 5 cancelled_is 1
T1=$(date +%s.%N)
echo "   cancel noticed within $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.3f", b - a }') s of the client leaving"
wait "$CONC"
[ "$(jq -r '.choices[0].text' "$TMP/concurrent.json")" = "$REF" ]; check "a concurrent client's output is unchanged" $?
wait_for "sequence and KV blocks freed" 5 kv_idle
grep -q '\[DONE\]' "$TMP/a.sse" && { check "the dropped stream did not run to the end" 1; } || check "the dropped stream did not run to the end" 0

# ---- during prefill: a long prompt evaluated in 32-token chunks; drop before the first token
PROMPT=$(printf 'word %.0s' $(seq 1 300))
BODYJ=$(jq -nc --arg p "$PROMPT" '{prompt:$p,max_tokens:50,stream:true}')
post /tokenize "$(jq -nc --arg p "$PROMPT" '{content:$p}')"
echo "   prefill prompt: $(jqb '.tokens | length') tokens"
sse_stream "$BODYJ" "$TMP/b.sse"
sleep 0.05
kill "$SSE_PID"
wait "$SSE_PID" 2>/dev/null
wait_for "client gone during prefill: cancelled" 5 cancelled_is 2
wait_for "blocks freed after prefill cancel" 5 kv_idle

# ---- while queued: 2 slots busy, a third request waits, then its client leaves
sse_stream "$LONG" "$TMP/c1.sse"
P1=$SSE_PID
sse_stream "$LONG" "$TMP/c2.sse"
P2=$SSE_PID
wait_for "two streams running" 20 bash -c "grep -q '\"text\"' '$TMP/c1.sse' && grep -q '\"text\"' '$TMP/c2.sse'"
sse_stream "$LONG" "$TMP/c3.sse"
P3=$SSE_PID
wait_for "third request queued" 5 bash -c "[ \"\$(curl -s $BASE/metrics | awk '\$1 == \"minnow_queue_depth\" { print \$2 }')\" = 1 ]"
kill "$P3"
wait "$P3" 2>/dev/null
wait_for "queued request cancelled (queue depth back to 0)" 5 bash -c "[ \"\$(curl -s $BASE/metrics | awk '\$1 == \"minnow_queue_depth\" { print \$2 }')\" = 0 ]"
wait_for "queued cancel counted" 5 cancelled_is 3
kill "$P1" "$P2" 2>/dev/null
wait "$P1" "$P2" 2>/dev/null
wait_for "all slots and blocks freed" 5 kv_idle

# ---- non-streaming request whose client leaves (curl --max-time)
C=$(metric minnow_cancelled_sequences_total)
curl -s --max-time 0.3 -H 'Content-Type: application/json' -d '{"prompt":"Once upon a time","max_tokens":480,"temperature":0}' "$BASE/v1/completions" >/dev/null
wait_for "non-stream client gone: cancelled" 5 cancelled_is $((C + 1))
wait_for "blocks freed after non-stream cancel" 5 kv_idle

finish
