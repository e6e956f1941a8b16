# basic.sh: `minnow serve` end to end with curl on the tiny stories260K model: health, models,
# completions and chat completions (non-stream and SSE stream), usage, stop sequences (never in
# the output), n > 1, logprobs, seeds (same seed = same output), prefix-cache cached_tokens,
# tokenize/detokenize, metrics, keep-alive, and a clean SIGTERM exit.
. "$(dirname "$0")/lib/common.bash"
make_model
start_server -c 256 --parallel 4

req GET /health
expect_status 200 "health ready"
[ "$(jqb .status)" = ok ]; check "health says ok" $?

req GET /v1/models
expect_status 200 "models"
[ "$(jqb '.object')" = list ] && [ "$(jqb '.data[0].object')" = model ] && [ -n "$(jqb '.data[0].id')" ]
check "models list shape" $?

# ---- completions, greedy
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0}'
expect_status 200 "completion"
[ "$(jqb .object)" = text_completion ] && [ "$(jqb '.choices[0].finish_reason')" = length ] &&
    [ "$(jqb '.usage.completion_tokens')" = 24 ] && [ "$(jqb '.usage.prompt_tokens')" -gt 0 ] &&
    [ "$(jqb '.usage.total_tokens')" = $(($(jqb '.usage.prompt_tokens') + 24)) ]
check "completion shape, finish_reason length, usage" $?
GREEDY=$(jqb '.choices[0].text')
[ -n "$GREEDY" ]; check "completion has text" $?
post /v1/completions '{"prompt":"Once upon a time","max_tokens":24,"temperature":0}'
[ "$(jqb '.choices[0].text')" = "$GREEDY" ]; check "greedy is deterministic" $?
[ "$(jqb '.usage.prompt_tokens_details.cached_tokens')" -gt 0 ]
check "repeated prompt reports cached_tokens > 0 ($(jqb '.usage.prompt_tokens_details.cached_tokens'))" $?

# ---- prompt as token ids
post /v1/completions '{"prompt":[1,400,401,402],"max_tokens":4,"temperature":0}'
expect_status 200 "token-id prompt"
[ "$(jqb '.usage.prompt_tokens')" = 4 ]; check "token-id prompt counts 4 tokens" $?

# ---- streaming completion: concatenated chunks equal the non-stream text
curl -sN -H 'Content-Type: application/json' -d '{"prompt":"Once upon a time","max_tokens":24,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' \
    "$BASE/v1/completions" >"$TMP/sse"
[ "$(tail -c 14 "$TMP/sse")" = "$(printf 'data: [DONE]\n\n')" ]; check "stream ends with data: [DONE]" $?
STREAMED=$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | jq -j 'select(.choices | length > 0) | .choices[0].text')
[ "$STREAMED" = "$GREEDY" ]; check "stream text equals non-stream text" $?
[ "$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | jq -s '[.[] | select(.choices | length == 0)] | .[0].usage.completion_tokens')" = 24 ]
check "include_usage: final chunk with usage" $?
[ "$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | jq -rs '[.[] | .choices[]? | select(.finish_reason != null)] | .[0].finish_reason')" = length ]
check "stream finish_reason length" $?
grep -v '^data: \|^$' "$TMP/sse" | grep -q . && { false; check "only data: lines in the SSE body" 1; } || check "only data: lines in the SSE body" 0

# ---- stop sequences: cut the greedy text in the middle; the stop text never appears
STOP=$(printf '%s' "$GREEDY" | cut -c 6-8)
if [ ${#STOP} -ge 2 ]; then
    BODYJ=$(jq -nc --arg s "$STOP" '{prompt:"Once upon a time",max_tokens:24,temperature:0,stop:[$s,"zzzzzz"]}')
    post /v1/completions "$BODYJ"
    OUT=$(jqb '.choices[0].text')
    WANT=${GREEDY%%"$STOP"*}
    [ "$OUT" = "$WANT" ] && [ "$(jqb '.choices[0].finish_reason')" = stop ]
    check "stop '$STOP' cuts the output before it, finish_reason stop (got '$OUT', want '$WANT')" $?
    BODYJ=$(jq -nc --arg s "$STOP" '{prompt:"Once upon a time",max_tokens:24,temperature:0,stop:$s,stream:true}')
    OUT=$(curl -sN -H 'Content-Type: application/json' -d "$BODYJ" "$BASE/v1/completions" | grep '^data: {' | sed 's/^data: //' | jq -j '.choices[0].text')
    [ "$OUT" = "$WANT" ]; check "streamed stop holds back the stop text (got '$OUT')" $?
else
    check "greedy text long enough to test stop sequences" 1
fi

# ---- chat, non-stream and stream
post /v1/chat/completions '{"messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Tell me one."}],"max_tokens":16,"temperature":0}'
expect_status 200 "chat completion"
[ "$(jqb .object)" = chat.completion ] && [ "$(jqb '.choices[0].message.role')" = assistant ] &&
    [ "$(jqb '.choices[0].finish_reason')" != null ] && [ "$(jqb '.usage.completion_tokens')" -ge 1 ]
check "chat shape" $?
CHAT=$(jqb '.choices[0].message.content')
curl -sN -H 'Content-Type: application/json' -d '{"messages":[{"role":"system","content":"You tell stories."},{"role":"user","content":"Tell me one."}],"max_tokens":16,"temperature":0,"stream":true}' \
    "$BASE/v1/chat/completions" >"$TMP/sse"
grep '^data: {' "$TMP/sse" | head -1 | sed 's/^data: //' | jq -e '.object == "chat.completion.chunk" and .choices[0].delta.role == "assistant"' >/dev/null
check "first chat chunk carries delta.role" $?
[ "$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | jq -j '.choices[0].delta.content // ""')" = "$CHAT" ]
check "chat stream content equals non-stream content" $?
grep -q '"usage"' "$TMP/sse" && { check "no usage in chunks without include_usage" 1; } || check "no usage in chunks without include_usage" 0

# ---- n > 1 with a seed; same seed = same output; different seeds differ
post /v1/completions '{"prompt":"Once upon a time","max_tokens":16,"temperature":1.0,"n":3,"seed":42,"logprobs":0}'
expect_status 200 "n=3"
[ "$(jqb '.choices | length')" = 3 ] && [ "$(jqb '[.choices[].index] | join(",")')" = "0,1,2" ]
check "n=3 gives 3 choices indexed 0..2" $?
SEEDED=$(jqb '[.choices[].text] | join("|")')
[ "$(jqb '.usage.completion_tokens')" = "$(jqb '[.choices[].logprobs.tokens | length] | add')" ]
check "usage.completion_tokens = sum of the choices' tokens ($(jqb '.usage.completion_tokens'))" $?
post /v1/completions '{"prompt":"Once upon a time","max_tokens":16,"temperature":1.0,"n":3,"seed":42,"logprobs":0}'
[ "$(jqb '[.choices[].text] | join("|")')" = "$SEEDED" ]; check "same seed, same outputs" $?
post /v1/completions '{"prompt":"Once upon a time","max_tokens":16,"temperature":1.0,"n":1,"seed":43}'
[ "$(jqb '.choices[0].text')" != "${SEEDED%%|*}" ]; check "another seed, another output" $?
post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":8,"n":2,"seed":7,"stream":true}'
[ "$(grep -c '"index":1' <<<"$BODY")" -ge 1 ] && [ "$(grep -c '"index":0' <<<"$BODY")" -ge 1 ]
check "streamed n=2 has chunks for both indexes" $?

# ---- logprobs
post /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"temperature":0,"logprobs":true,"top_logprobs":3}'
expect_status 200 "chat logprobs"
jq -e '.choices[0].logprobs.content | length == 5' <<<"$BODY" >/dev/null &&
    jq -e '.choices[0].logprobs.content | all(.logprob <= 0 and (.top_logprobs | length) == 3 and (.bytes | type) == "array")' <<<"$BODY" >/dev/null &&
    jq -e '.choices[0].logprobs.content | all(.logprob == .top_logprobs[0].logprob)' <<<"$BODY" >/dev/null
check "chat logprobs: 5 entries, 3 alternatives each, greedy pick is the top one" $?
post /v1/completions '{"prompt":"Once","max_tokens":4,"temperature":0,"logprobs":2}'
jq -e '.choices[0].logprobs | (.tokens | length) == 4 and (.token_logprobs | length) == 4 and (.top_logprobs | length) == 4 and (.text_offset | length) == 4' <<<"$BODY" >/dev/null
check "completion logprobs arrays" $?

# ---- tokenize / detokenize round trip
post /tokenize '{"content":"Once upon a time","add_special":false}'
expect_status 200 "tokenize"
IDS=$(jqb '.tokens')
[ "$(jq length <<<"$IDS")" -gt 0 ]; check "tokenize gives ids" $?
post /detokenize "{\"tokens\":$IDS}"
expect_status 200 "detokenize"
[ "$(jqb .content)" = "Once upon a time" ]; check "detokenize(tokenize(x)) = x (got '$(jqb .content)')" $?

# ---- metrics
M=$(curl -s "$BASE/metrics")
for name in minnow_requests_total minnow_prompt_tokens_total minnow_generated_tokens_total \
    minnow_prefix_cache_hit_tokens_total minnow_queue_depth minnow_batch_tokens_bucket \
    minnow_time_to_first_token_seconds_bucket minnow_inter_token_latency_seconds_bucket; do
    grep -q "^$name" <<<"$M"; check "metrics has $name" $?
done
[ "$(awk '$1 == "minnow_generated_tokens_total" { print $2 }' <<<"$M")" -gt 100 ]
check "generated tokens counted" $?
grep -q 'minnow_requests_total{endpoint="completions",status="200"}' <<<"$M"; check "requests by status" $?

# ---- keep-alive: two requests on one connection
N=$(curl -sv -H 'Content-Type: application/json' -d '{"prompt":"a","max_tokens":1}' "$BASE/v1/completions" \
    -H 'Content-Type: application/json' -d '{"prompt":"b","max_tokens":1}' "$BASE/v1/completions" 2>&1 |
    grep -c 'Re-using existing connection')
[ "$N" -ge 1 ]; check "keep-alive reuses the connection" $?

finish
