#!/usr/bin/env bash
# tokenize.sh: `minnow tokenize` end to end on the real vocabularies in $MINNOW_SHARED/vocab.
# The expected ids are read from the llama.cpp reference files (X.gguf.out line 12 is the ids of
# "Hello world", line 29 those of "    Hello\n    Hello"), so nothing here is hard-coded except
# the BOS id of the SentencePiece vocabulary. Also checks --help, usage and runtime errors (exit
# codes 2 and 1, message on stderr, nothing on stdout), -f FILE and -f - (stdin), --special.
# Exit 0: pass, 1: fail, 77: skipped (no $MINNOW_SHARED/vocab).
set -u
BIN=${MINNOW_BIN:?MINNOW_BIN must point at the minnow binary}
VOCAB=${MINNOW_SHARED:-}/vocab
if [ -z "${MINNOW_SHARED:-}" ] || [ ! -d "$VOCAB" ]; then
    echo "skipped: \$MINNOW_SHARED/vocab not found"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
check() { # name, expected, actual
    if [ "$2" != "$3" ]; then
        echo "FAIL $1: expected '$2', got '$3'"
        fails=$((fails + 1))
    else
        echo "ok   $1"
    fi
}
trim() { sed 's/^ *//'; }

for v in llama-spm phi-3 gpt-2 deepseek-coder falcon; do
    m="$VOCAB/ggml-vocab-$v.gguf"
    want=$(sed -n 12p "$m.out" | trim)
    got=$("$BIN" tokenize -m "$m" --text "Hello world" --ids --no-bos)
    check "$v --text" "$want" "$got"
    want=$(sed -n 29p "$m.out" | trim)
    printf '    Hello\n    Hello' > "$TMP/in.txt"
    got=$("$BIN" tokenize -m "$m" -f "$TMP/in.txt" --ids --no-bos)
    check "$v -f FILE" "$want" "$got"
    got=$(printf '    Hello\n    Hello' | "$BIN" tokenize -m "$m" -f - --ids --no-bos)
    check "$v -f -" "$want" "$got"
done

m="$VOCAB/ggml-vocab-llama-spm.gguf"
hello=$(sed -n 12p "$m.out" | trim)
check "BOS added by default" "1 $hello" "$("$BIN" tokenize -m "$m" --text "Hello world" --ids)"
check "--special parses <s>" "1 1 $hello" "$("$BIN" tokenize -m "$m" --text "<s>Hello world" --ids --special)"
plain=$("$BIN" tokenize -m "$m" --text "<s>" --ids --no-bos)
case " $plain " in *" 1 "*) check "<s> is text without --special" "no id 1" "$plain" ;; *) check "<s> is text without --special" x x ;; esac
lines=$("$BIN" tokenize -m "$m" --text "Hello world" --no-bos)
check "piece lines" "$(printf " 15043 ' Hello'\n  3186 ' world'")" "$lines"
esc=$("$BIN" tokenize -m "$m" --text $'a\tb' --no-bos | tr '\n' '|')
case "$esc" in *"'\\t'"*) check "tab escaped" x x ;; *) check "tab escaped" "\\t in output" "$esc" ;; esac

"$BIN" tokenize --help > "$TMP/help" 2>&1
check "--help exit" 0 $?
grep -q "usage: minnow tokenize" "$TMP/help"
check "--help text" 0 $?

"$BIN" tokenize --text x > "$TMP/out" 2> "$TMP/err"
check "missing -m exit" 2 $?
check "missing -m stdout empty" "" "$(cat "$TMP/out")"
grep -q "MODEL is required" "$TMP/err"
check "missing -m message" 0 $?
"$BIN" tokenize -m "$m" --text x -f y > /dev/null 2>&1
check "--text and -f exit" 2 $?
"$BIN" tokenize -m "$m" --bogus > /dev/null 2>&1
check "unknown option exit" 2 $?
"$BIN" tokenize -m "$TMP/nope.gguf" --text x > "$TMP/out" 2> "$TMP/err"
check "missing model exit" 1 $?
grep -q "nope.gguf" "$TMP/err"
check "missing model message" 0 $?
printf 'not a gguf file at all, just text' > "$TMP/bad.gguf"
"$BIN" tokenize -m "$TMP/bad.gguf" --text x > /dev/null 2> "$TMP/err"
check "bad model exit" 1 $?
"$BIN" tokenize -m "$m" -f "$TMP/none.txt" > /dev/null 2>&1
check "missing text file exit" 1 $?

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
