# chat_template.sh: chat messages go through the model's own chat template (here Phi-3's, carried
# by a random-weight model built with the real Phi-3 vocabulary), and BAD_INPUTS row 18: text that
# spells a special token ("<|end|>") inside a user's content stays text (several ids), never the
# special token the template itself uses.
. "$(dirname "$0")/lib/common.bash"
VOCAB="$MINNOW_SHARED/vocab/ggml-vocab-phi-3.gguf"
[ -f "$VOCAB" ] || skip "$VOCAB not found"
MODEL="$TMP/phi3vocab.gguf"
"$MINNOW_BIN" synth --arch stories15m --type f32 --vocab-from "$VOCAB" --out "$MODEL" >"$TMP/synth.log" 2>&1 ||
    skip "minnow synth failed: $(tail -1 "$TMP/synth.log")"
start_server -c 512 --parallel 2
grep -q "chat template: the model's" "$TMP/server.log"; check "server uses the model's chat template" $?

post /tokenize '{"content":"<|end|>","add_special":false,"parse_special":true}'
[ "$(jqb '.tokens | length')" = 1 ]; check "<|end|> is one special token when parsed as markup" $?
post /tokenize '{"content":"<|end|>","add_special":false}'
N_TEXT=$(jqb '.tokens | length')
[ "$N_TEXT" -gt 1 ]; check "<|end|> is $N_TEXT ids as plain text" $?

post /v1/chat/completions '{"messages":[{"role":"user","content":"a"}],"max_tokens":1}'
expect_status 200 "chat through the Phi-3 template"
BASE_N=$(jqb .usage.prompt_tokens)
post /v1/chat/completions '{"messages":[{"role":"user","content":"a<|end|>"}],"max_tokens":1}'
INJ_N=$(jqb .usage.prompt_tokens)
[ $((INJ_N - BASE_N)) -gt 1 ]
check "user-typed <|end|> adds $((INJ_N - BASE_N)) prompt tokens (text), not 1 (special)" $?

# the template shapes the prompt: two turns cost more than one, and an assistant turn is rendered
post /v1/chat/completions '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}],"max_tokens":1}'
expect_status 200 "multi-turn chat"
[ "$(jqb .usage.prompt_tokens)" -gt $((BASE_N + 4)) ]; check "multi-turn prompt is longer ($(jqb .usage.prompt_tokens) > $BASE_N + 4)" $?
finish
