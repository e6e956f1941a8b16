# openai_client.sh: `minnow serve` driven by the official `openai` npm client
# (tests/server/lib/openai_check.mjs): chat and completions, stream and non-stream, stop
# sequences, n > 1, seeds, logprobs, usage with cached tokens, typed errors (400 with param, 401)
# and a client abort mid-stream. The package is installed into the build tree
# (<build>/node/node_modules) on first run; without npm or the registry the test skips (77).
. "$(dirname "$0")/lib/common.bash"
command -v node >/dev/null || skip "node not installed"
NODE_DIR="$(dirname "$MINNOW_BIN")/node"
if [ ! -f "$NODE_DIR/node_modules/openai/index.mjs" ]; then
    command -v npm >/dev/null || skip "npm not installed"
    mkdir -p "$NODE_DIR"
    timeout 300 npm install --prefix "$NODE_DIR" --no-audit --no-fund openai >"$TMP/npm.log" 2>&1 ||
        skip "npm could not install openai: $(tail -1 "$TMP/npm.log")"
fi
[ -f "$NODE_DIR/node_modules/openai/index.mjs" ] || skip "openai package has no index.mjs"
echo "openai client $(jq -r .version "$NODE_DIR/node_modules/openai/package.json")"
make_model
start_server -c 4096 --parallel 4 --api-key test-key-123
BASE="$BASE" KEY=test-key-123 OPENAI_MODULE="$NODE_DIR/node_modules/openai/index.mjs" \
    timeout 300 node "$(dirname "$0")/lib/openai_check.mjs"
check "openai client checks" $?
finish
