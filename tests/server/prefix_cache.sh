# prefix_cache.sh: the prefix cache through the API. A request sharing a long system prompt with an
# earlier one reports prompt_tokens_details.cached_tokens covering the shared full blocks and skips
# their prefill (minnow_prefix_cache_hit_tokens_total grows by the same amount); BAD_INPUTS row 38:
# at temperature 0 the cached answer equals the cold answer, also after the cache was churned by
# unrelated prompts (eviction) and on a fresh server.
. "$(dirname "$0")/lib/common.bash"
make_model
start_server -c 256 --parallel 2 --kv-memory 1

SYS=$(printf 'Lily and Tom went to the park to play with a big red ball. %.0s' $(seq 1 1))
chat() { jq -nc --arg s "$SYS" --arg u "$1" '{messages:[{role:"system",content:$s},{role:"user",content:$u}],max_tokens:24,temperature:0}'; }

post /v1/chat/completions "$(chat 'What did they do?')"
expect_status 200 "cold request"
COLD_CACHED=$(jqb '.usage.prompt_tokens_details.cached_tokens')
PT=$(jqb '.usage.prompt_tokens')
ANSWER_A=$(jqb '.choices[0].message.content')
[ -n "$ANSWER_A" ] && [ "$ANSWER_A" != null ]; check "cold answer is text" $?
echo "   prompt $PT tokens, cold cached $COLD_CACHED"
HIT0=$(metric minnow_prefix_cache_hit_tokens_total)
post /v1/chat/completions "$(chat 'Who was there?')"
expect_status 200 "second request, same system prompt"
CACHED=$(jqb '.usage.prompt_tokens_details.cached_tokens')
PT2=$(jqb '.usage.prompt_tokens')
HIT1=$(metric minnow_prefix_cache_hit_tokens_total)
echo "   prompt $PT2 tokens, cached $CACHED"
[ "$CACHED" -ge 64 ] && [ $((CACHED % 16)) = 0 ] && [ "$CACHED" -lt "$PT2" ]
check "shared system prompt served from cache in whole 16-token blocks ($CACHED of $PT2)" $?
[ $((HIT1 - HIT0)) = "$CACHED" ]; check "metrics count the same hit tokens ($((HIT1 - HIT0)))" $?
ANSWER_B=$(jqb '.choices[0].message.content')

post /v1/chat/completions "$(chat 'What did they do?')"
[ "$(jqb '.choices[0].message.content')" = "$ANSWER_A" ] && [ "$(jqb '.usage.prompt_tokens_details.cached_tokens')" -gt "$CACHED" ]
check "fully cached repeat gives the cold answer" $?

# churn: unrelated long prompts through a small pool evict the cached blocks
for i in $(seq 1 12); do
    post /v1/completions "{\"prompt\":[1,$(jq -nc "[range(0; 200) | (. * 7 + $i) % 500 + 3] | join(\",\")" | tr -d '"')],\"max_tokens\":16,\"temperature\":0}"
    [ "$STATUS" = 200 ] || { check "churn request $i" 1; break; }
done
post /v1/chat/completions "$(chat 'Who was there?')"
[ "$(jqb '.choices[0].message.content')" = "$ANSWER_B" ]
check "after eviction churn, same answer (cached now: $(jqb '.usage.prompt_tokens_details.cached_tokens'))" $?
stop_server

start_server -c 256 --parallel 2
post /v1/chat/completions "$(chat 'Who was there?')"
[ "$(jqb '.choices[0].message.content')" = "$ANSWER_B" ] && [ "$(jqb '.usage.prompt_tokens_details.cached_tokens')" = 0 ]
check "fresh server (cold run) gives the cached run's answer" $?
finish
