#!/usr/bin/env bash
# Installs what minnow needs, builds it, and runs it on a model.
#   scripts/quickstart.sh MODEL.gguf ["prompt text"]
# With no model: explains where small GGUF models come from, and (when ../shared holds the
# stories260K checkpoint) converts it and runs it as a demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
echo "built ./build/minnow"
if [ $# -ge 1 ]; then
  prompt=${2:-"Once upon a time"}
  exec ./build/minnow run -m "$1" -p "$prompt" -n 128
fi
cat <<'MSG'
No model given. minnow runs GGUF files of the `llama` family (Llama 2/3.x, TinyLlama,
SmolLM/SmolLM2, Mistral-style) and the `qwen2` family (Qwen2/Qwen2.5), with F32, F16, BF16, Q8_0
or Q4_0 weights. Small ones (135M-1.5B parameters) are published as .gguf files on model hubs,
e.g. SmolLM2-135M-Instruct, Qwen2.5-0.5B-Instruct, TinyLlama-1.1B-Chat; download one and run:
    scripts/quickstart.sh path/to/model.gguf "Your prompt"
A llama2.c checkpoint converts with: ./build/minnow convert llama2c IN.bin OUT.gguf
MSG
if [ -f ../shared/models/stories260K.bin ]; then
  echo
  echo "Demo: converting ../shared/models/stories260K.bin and generating 64 tokens (ids; it has no vocabulary):"
  ./build/minnow convert llama2c ../shared/models/stories260K.bin build/stories260K.gguf
  ./build/minnow run -m build/stories260K.gguf --tokens 1 -n 64 --temp 0 --ids
fi
