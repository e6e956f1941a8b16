#!/usr/bin/env bash
# inspect.sh: end-to-end test of `minnow inspect`.
#   - good files (the committed writer-made seeds in tests/corpus/fuzz_gguf, and the real tokenizer
#     GGUFs in ../shared/vocab when present) print their version, keys and tensors and exit 0;
#     --json output is checked with python3's json module when python3 is available;
#   - bad files (handcrafted with printf: bad magic, version 1, huge n_kv, truncated real files)
#     exit non-zero but not by a signal (exit code 1, < 128) with a message naming the problem;
#   - usage errors exit 2.
# Exit 0 = pass, 1 = fail, 77 = skip (MINNOW_BIN missing).
set -u

BIN=${MINNOW_BIN:-}
SRC=${MINNOW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "skipped: MINNOW_BIN is not set to the minnow binary"
    exit 77
fi

TMP=$(mktemp -d /tmp/mn_inspect_test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_ok FILE WORD...: exit 0, and stdout contains every WORD
expect_ok() {
    local file=$1
    shift
    "$BIN" inspect "$file" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -ne 0 ]; then
        fail "inspect $file: exit $rc: $(cat "$TMP/err")"
        return
    fi
    for w in "$@"; do
        grep -qF -- "$w" "$TMP/out" || fail "inspect $file: output lacks '$w'"
    done
}

# expect_bad FILE WORD: exit code in [1, 127] (an error, not a signal) and WORD on stderr
expect_bad() {
    local file=$1 word=$2
    "$BIN" inspect "$file" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then
        fail "inspect $file: exit $rc, wanted an error exit (1..127)"
    fi
    grep -qF -- "$word" "$TMP/err" || fail "inspect $file: stderr lacks '$word': $(cat "$TMP/err")"
    [ -s "$TMP/out" ] && fail "inspect $file: printed to stdout on error"
}

json_check() {
    command -v python3 >/dev/null 2>&1 || return 0
    "$BIN" inspect --json "$1" | python3 -c "$2" || fail "inspect --json $1: $2"
}

# ---------------------------------------------------------------- good files
CORPUS=$SRC/tests/corpus/fuzz_gguf
expect_ok "$CORPUS/seed_tensors" "version:     3" "alignment:   32" "general.architecture" '"llama"' \
    "token_embd.weight" "q8_0" "q4_0" "[16, 1, 2, 2]" "total: 4 tensors"
expect_ok "$CORPUS/seed_arrays" "tokenizer.ggml.tokens" "array[string]" "[5]" '"<unk>"'
expect_ok "$CORPUS/seed_v2" "version:     2" "general.name"
json_check "$CORPUS/seed_tensors" '
import json, sys
d = json.load(sys.stdin)
assert d["version"] == 3 and d["alignment"] == 32, d
assert d["metadata"]["general.architecture"]["value"] == "llama"
t = {x["name"]: x for x in d["tensors"]}
assert t["blk.0.attn_q.weight"]["type"] == "q8_0" and t["blk.0.attn_q.weight"]["bytes"] == 68
assert d["totals"]["tensors"] == 4'

SHARED=${MINNOW_SHARED:-$SRC/../shared}
if [ -d "$SHARED/vocab" ]; then
    for f in "$SHARED"/vocab/*.gguf; do
        expect_ok "$f" "tokenizer.ggml.model" "tokenizer.ggml.tokens" "general.architecture" "tensors: 0"
    done
    expect_ok "$SHARED/vocab/ggml-vocab-llama-spm.gguf" '"llama"' "[32000]" '"<unk>", "<s>", "</s>"'
    expect_ok "$SHARED/vocab/ggml-vocab-gpt-2.gguf" '"gpt2"' "[50257]" "tokenizer.ggml.merges"
    json_check "$SHARED/vocab/ggml-vocab-gpt-2.gguf" '
import json, sys
d = json.load(sys.stdin)
m = d["metadata"]
assert m["tokenizer.ggml.model"]["value"] == "gpt2"
assert len(m["tokenizer.ggml.tokens"]["value"]) == 50257 == m["tokenizer.ggml.tokens"]["count"]'
    # a real file cut short: every kind of cut fails cleanly
    for n in 0 3 20 24 100 5000 400000; do
        head -c $n "$SHARED/vocab/ggml-vocab-llama-spm.gguf" >"$TMP/cut.gguf"
        expect_bad "$TMP/cut.gguf" "$TMP/cut.gguf: "
    done
    head -c 5000 "$SHARED/vocab/ggml-vocab-llama-spm.gguf" >"$TMP/cut.gguf"
    expect_bad "$TMP/cut.gguf" "tokenizer.ggml.tokens"
else
    echo "note: $SHARED/vocab is absent: real-file checks skipped"
fi

# ---------------------------------------------------------------- bad files
printf 'GGML\x03\x00\x00\x00' >"$TMP/magic.gguf"
expect_bad "$TMP/magic.gguf" "bad magic"
: >"$TMP/empty.gguf"
expect_bad "$TMP/empty.gguf" "bad magic"
printf 'GGUF\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' >"$TMP/v1.gguf"
expect_bad "$TMP/v1.gguf" "unsupported version 1"
printf 'GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f' >"$TMP/nkv.gguf"
expect_bad "$TMP/nkv.gguf" "n_kv"
# one key whose string value claims 2^64-1 bytes
printf 'GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00' >"$TMP/str.gguf"
printf '\x01\x00\x00\x00\x00\x00\x00\x00k\x08\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff' >>"$TMP/str.gguf"
expect_bad "$TMP/str.gguf" "key 'k': string length 18446744073709551615"
expect_bad "$TMP/does-not-exist.gguf" "cannot open"
expect_bad "$TMP" "not a regular file"

# ---------------------------------------------------------------- usage
"$BIN" inspect >/dev/null 2>&1
[ $? -eq 2 ] || fail "inspect without a file should exit 2"
"$BIN" inspect --bogus "$CORPUS/seed_v2" >/dev/null 2>&1
[ $? -eq 2 ] || fail "inspect --bogus should exit 2"
"$BIN" inspect --help | grep -q "usage: minnow inspect" || fail "inspect --help"

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "inspect: all checks passed"
exit 0
