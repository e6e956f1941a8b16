#!/usr/bin/env bash
# `minnow chat` driven through a pipe: a model with a real vocabulary (random weights) and no chat
# template falls back to ChatML with a warning, answers each line, honours /reset and /exit, and
# exits 0; a model without a vocabulary is refused with a message.
set -u
shared=${MINNOW_SHARED:-}
bin=${MINNOW_BIN:-}
if [ -z "$shared" ] || [ ! -f "$shared/vocab/ggml-vocab-gpt-2.gguf" ]; then echo "skipped: ../shared/vocab not found"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" synth --arch stories15m --type q8_0 --vocab-from "$shared/vocab/ggml-vocab-gpt-2.gguf" --out "$tmp/m.gguf" 2>/dev/null \
  || { echo "FAIL: synth"; exit 1; }
printf 'hello there\n/reset\nhow are you\n/exit\nnever read\n' | "$bin" chat -m "$tmp/m.gguf" -n 8 --temp 0 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: chat exited $rc"; cat "$tmp/err"; exit 1; }
grep -q "using ChatML" "$tmp/err" || { echo "FAIL: no ChatML fallback warning"; cat "$tmp/err"; exit 1; }
lines=$(grep -c . "$tmp/out")
[ "$lines" -eq 2 ] || { echo "FAIL: expected 2 replies, got $lines lines"; cat "$tmp/out"; exit 1; }
# greedy: the same first message after /reset gives the same reply
printf 'hello there\n/reset\nhello there\n' | "$bin" chat -m "$tmp/m.gguf" -n 8 --temp 0 >"$tmp/out2" 2>/dev/null
[ "$(sed -n 1p "$tmp/out2")" = "$(sed -n 2p "$tmp/out2")" ] || { echo "FAIL: /reset did not reset"; cat "$tmp/out2"; exit 1; }
"$bin" convert llama2c "$shared/models/stories260K.bin" "$tmp/s.gguf" 2>/dev/null
echo hi | "$bin" chat -m "$tmp/s.gguf" >/dev/null 2>"$tmp/err"; rc=$?
# stories260K has a placeholder vocabulary: chat works (ChatML over byte tokens); a missing model fails cleanly
[ $rc -eq 0 ] || { echo "FAIL: chat on the placeholder vocabulary exited $rc"; cat "$tmp/err"; exit 1; }
"$bin" chat -m "$tmp/none.gguf" </dev/null >/dev/null 2>"$tmp/err"; rc=$?
{ [ $rc -ne 0 ] && [ $rc -lt 128 ]; } || { echo "FAIL: missing model exited $rc"; exit 1; }
echo "ok: chat through a pipe: 2 replies, /reset, /exit, fallback warning"
