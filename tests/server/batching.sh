# batching.sh: continuous batching must not change results. The issue's check: greedy outputs of
# 8 different prompts served concurrently equal the outputs of each served alone, token for token
# (f32 model; tokens compared through completions logprobs). BAD_INPUTS row 39: the same seeded
# sampling request sent 32 times at once gives 32 identical outputs. Also checks that requests
# really were batched (forward passes carried more than one sequence).
. "$(dirname "$0")/lib/common.bash"
make_model
start_server -c 256 --parallel 8

body() { # body I: prompt I as token ids (BOS + 3 ids), greedy, 64 tokens
    echo "{\"prompt\":[1,$((300 + $1)),$((350 + 3 * $1)),$((420 + $1))],\"max_tokens\":64,\"temperature\":0,\"logprobs\":0}"
}
tokens_of() { jq -c '[.choices[0].logprobs.tokens, .choices[0].finish_reason]' "$1"; }

for i in $(seq 0 7); do
    curl -s -H 'Content-Type: application/json' -d "$(body $i)" "$BASE/v1/completions" >"$TMP/alone$i.json"
done
STEPS0=$(metric minnow_forward_passes_total)
for i in $(seq 0 7); do
    curl -s -H 'Content-Type: application/json' -d "$(body $i)" "$BASE/v1/completions" >"$TMP/batch$i.json" &
done
wait $(jobs -p | grep -v "^$SERVER_PID\$")
STEPS1=$(metric minnow_forward_passes_total)
SAME=0
for i in $(seq 0 7); do
    A=$(tokens_of "$TMP/alone$i.json")
    B=$(tokens_of "$TMP/batch$i.json")
    [ "$(jq -r '.[0] | length' <<<"$A")" -ge 1 ] || echo "   prompt $i: no tokens alone: $(head -c 200 "$TMP/alone$i.json")"
    if [ "$A" = "$B" ]; then SAME=$((SAME + 1)); else echo "   prompt $i differs:"; echo "     alone: $A"; echo "     batch: $B"; fi
done
[ "$SAME" = 8 ]; check "8 prompts: concurrent greedy outputs equal solo outputs token for token ($SAME/8)" $?
GEN=$(jq -s '[.[].usage.completion_tokens] | add' "$TMP"/batch*.json)
echo "   concurrent phase: $GEN tokens generated in $((STEPS1 - STEPS0)) forward passes"
[ $((STEPS1 - STEPS0)) -lt "$GEN" ]; check "the concurrent requests shared forward passes (batched)" $?

# row 39: 32 identical seeded requests at once
B32='{"prompt":"Once upon a time","max_tokens":32,"temperature":0.9,"seed":1234}'
for i in $(seq 1 32); do
    curl -s -H 'Content-Type: application/json' -d "$B32" "$BASE/v1/completions" >"$TMP/same$i.json" &
done
wait $(jobs -p | grep -v "^$SERVER_PID\$")
N=$(jq -r '.choices[0].text' "$TMP"/same*.json | sort -u | wc -l)
OK=$(jq -r '.choices[0].finish_reason' "$TMP"/same*.json | grep -c -v null)
[ "$N" = 1 ] && [ "$OK" = 32 ]; check "32 concurrent identical seeded requests: identical outputs ($N distinct, $OK answered)" $?

finish
