# common.bash: helpers for the server integration tests (sourced by tests/server/*.sh; not a test).
#
# Every test: makes the tiny stories260K model with `minnow convert llama2c` (skips, exit 77, when
# ../shared or the converter is missing), starts `minnow serve --port 0` on loopback, reads the
# port from its "listening on" line, waits for GET /health, and stops the server at exit with
# SIGTERM, checking that it exits 0. Assertions print what was expected and what came back.

set -u
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/minnow-srv-$TEST_NAME.XXXXXX")
SERVER_PID=""
PORT=""
BASE=""
FAILS=0
STATUS=""
BODY=""
HEADERS=""

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; [ -f "$TMP/server.log" ] && { echo "--- server log (tail)"; tail -20 "$TMP/server.log"; }; exit 1; }

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

[ -n "${MINNOW_BIN:-}" ] && [ -x "$MINNOW_BIN" ] || skip "MINNOW_BIN not set or not executable"
[ -n "${MINNOW_SHARED:-}" ] && [ -f "$MINNOW_SHARED/models/stories260K.bin" ] || skip "../shared/models/stories260K.bin not found"
command -v curl >/dev/null || skip "curl not installed"
command -v jq >/dev/null || skip "jq not installed"
"$MINNOW_BIN" serve --help >/dev/null 2>&1 || skip "this minnow binary has no 'serve' command"

# make_model: the tiny real model (vocab 512, f32) at $MODEL
make_model() {
    MODEL="$TMP/stories260K.gguf"
    "$MINNOW_BIN" convert llama2c "$MINNOW_SHARED/models/stories260K.bin" "$MODEL" >"$TMP/convert.log" 2>&1 ||
        skip "minnow convert llama2c failed: $(tail -1 "$TMP/convert.log")"
}

# start_server [serve options...]: starts on a free loopback port; sets SERVER_PID, PORT, BASE
start_server() {
    : >"$TMP/server.log"
    "$MINNOW_BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 -t 1 "$@" >>"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/server.log" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited at start"
        sleep 0.1
    done
    [ -n "$PORT" ] || die "server did not print its port"
    BASE="http://127.0.0.1:$PORT"
    for i in $(seq 1 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health")" = 200 ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited while loading"
        sleep 0.1
    done
    die "server not ready after 60 s"
}

# stop_server: SIGTERM, expects exit 0 within 60 s
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID"
    local i
    for i in $(seq 1 600); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && die "server still running 60 s after SIGTERM"
    wait "$SERVER_PID"
    local rc=$?
    SERVER_PID=""
    [ "$rc" = 0 ] || die "server exited with $rc after SIGTERM"
}

# req METHOD PATH [JSON body] [extra curl args...]: sets STATUS and BODY (and HEADERS). A third
# argument starting with '-' is a curl option, not a body.
req() {
    local method=$1 path=$2
    shift 2
    local data=()
    if [ $# -gt 0 ] && [ "${1:0:1}" != "-" ]; then
        printf '%s' "$1" >"$TMP/request.json"
        data=(-H 'Content-Type: application/json' --data-binary @"$TMP/request.json")
        shift
    fi
    STATUS=$(curl -s -X "$method" -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "${data[@]}" "$@" "$BASE$path")
    BODY=$(cat "$TMP/body")
    HEADERS=$(cat "$TMP/headers")
}

post() { req POST "$@"; }

check() { # check DESCRIPTION CONDITION-EXIT-CODE
    if [ "$2" -ne 0 ]; then
        echo "FAIL: $1"
        echo "      status=$STATUS body=$(printf '%.600s' "$BODY")"
        FAILS=$((FAILS + 1))
    else
        echo "ok: $1"
    fi
}

expect_status() { # expect_status WANT DESCRIPTION
    [ "$STATUS" = "$1" ]
    check "$2 (HTTP $1)" $?
}

# expect_error STATUS PARAM DESCRIPTION: an OpenAI error object with that status and param ("null": none)
expect_error() {
    local ok=0
    [ "$STATUS" = "$1" ] || ok=1
    [ "$(jq -r '.error.param' <<<"$BODY" 2>/dev/null)" = "$2" ] || ok=1
    jq -e '.error.message | length > 0' <<<"$BODY" >/dev/null 2>&1 || ok=1
    jq -e '.error.type | length > 0' <<<"$BODY" >/dev/null 2>&1 || ok=1
    jq -e '.error | has("code")' <<<"$BODY" >/dev/null 2>&1 || ok=1
    check "$3 (HTTP $1, param $2)" $ok
}

jqb() { jq -r "$1" <<<"$BODY"; }

# metric NAME: current value of an unlabelled metric
metric() { curl -s "$BASE/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

finish() {
    stop_server
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}

# make_model_15m: a random-weight stories15m-shaped f32 model with the Llama-2 vocabulary at
# $MODEL (slow enough, ~3 ms/token on one thread, that a stream lasts long enough to interrupt)
make_model_15m() {
    MODEL="$TMP/stories15m.gguf"
    local vocab="$MINNOW_SHARED/vocab/ggml-vocab-llama-spm.gguf"
    [ -f "$vocab" ] || skip "$vocab not found"
    "$MINNOW_BIN" synth --arch stories15m --type f32 --vocab-from "$vocab" --out "$MODEL" >"$TMP/synth.log" 2>&1 ||
        skip "minnow synth failed: $(tail -1 "$TMP/synth.log")"
}

# sse_stream JSON-BODY OUTFILE [curl args]: streams /v1/completions into OUTFILE in the background; sets SSE_PID
sse_stream() {
    local body=$1 out=$2
    shift 2
    curl -sN -H 'Content-Type: application/json' -d "$body" "$@" "$BASE/v1/completions" >"$out" 2>/dev/null &
    SSE_PID=$!
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds
wait_for() {
    local what=$1 secs=$2
    shift 2
    local i
    for i in $(seq 1 $((secs * 20))); do
        "$@" && { check "$what" 0; return 0; }
        sleep 0.05
    done
    check "$what (timed out after $secs s)" 1
    return 1
}
