#!/usr/bin/env bash
# Benchmarks the synthetic models (every shape of `minnow synth`) at Q8_0, Q4_0 and Q4_K_M with 1
# and 2 threads, in one run, and writes bench/RESULTS.md with the machine's description and the
# memory-bandwidth figure measured right before each model. Usage:
#   bench/run.sh [--quick] [--shapes "smollm2-135m tinyllama-1.1b"] [--types "q8_0 q4_0 q4_k_m"]
# --quick: 2 repeats, pp128, tg32 (a smoke run); default: 5 repeats, pp512, tg64, tg64 at depth 4096
# for tinyllama (the issue's targets). Models are cached in $MINNOW_BENCH_DIR (default /tmp/minnow-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./build/minnow
[ -x "$bin" ] || { cmake -S . -B build >/dev/null && cmake --build build -j "$(nproc)" >/dev/null; }
dir=${MINNOW_BENCH_DIR:-/tmp/minnow-bench}
mkdir -p "$dir"
shapes="stories15m smollm2-135m qwen2.5-0.5b tinyllama-1.1b llama3.2-1b"
types="q8_0 q4_0 q4_k_m"
reps=5 pp=512 tg=64
while [ $# -gt 0 ]; do
  case $1 in
    --quick) reps=2 pp=128 tg=32 ;;
    --shapes) shapes=$2; shift ;;
    --types) types=$2; shift ;;
    *) echo "usage: bench/run.sh [--quick] [--shapes LIST] [--types LIST]" >&2; exit 2 ;;
  esac
  shift
done
json="$dir/results.jsonl"
: > "$json"
for shape in $shapes; do
  src="$dir/$shape-f16.gguf"
  [ -f "$src" ] || "$bin" synth --arch "$shape" --type f16 --out "$src"
  for type in $types; do
    m="$dir/$shape-$type.gguf"
    [ -f "$m" ] || "$bin" quantize "$src" "$m" "$type" 2>/dev/null
    depth=0
    [ "$shape" = tinyllama-1.1b ] && [ $pp -eq 512 ] && depth=0,4096
    echo "bench: $shape $type" >&2
    "$bin" bench -m "$m" -t 1,2 -p $pp -n $tg -d $depth -r $reps --json | tee -a "$json" >/dev/null
  done
done
python3 - "$json" > bench/RESULTS.md <<'PY'
import json, sys, subprocess, datetime
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = subprocess.run("lscpu | grep -E 'Model name|^CPU\\(s\\)|Flags' | sed 's/Flags:.*avx512/Flags: ...avx512/' | cut -c1-120",
                     shell=True, capture_output=True, text=True).stdout.strip()
mem = subprocess.run("free -g | awk '/Mem:/ {print $2 \" GiB\"}'", shell=True, capture_output=True, text=True).stdout.strip()
print("# minnow benchmark results\n")
print(f"Made by `bench/run.sh` on {datetime.date.today()} in one run. Machine:\n")
print("```\n" + cpu + f"\nMemory: {mem}\n```\n")
print("Decode efficiency = decode tok/s / (memory read bandwidth / weight bytes streamed per token),")
print("bandwidth measured right before each model (all threads summing 64-bit words of 1 GiB, best of 5).")
print("Prefill GFLOP/s counts 2 FLOPs per weight per token plus attention. tok/s: min / median / max.\n")
bw = {(r["model"], r["threads"]): r["gb_s"] for r in rows if r["test"] == "bandwidth"}
print("| model | type | test | threads | tok/s min | median | max | efficiency / GFLOP/s | bandwidth GB/s |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if "tok_s_median" not in r: continue
    extra = f"eff {r['efficiency']:.2f}" if "efficiency" in r else f"{r['gflop_s']:.1f} GFLOP/s"
    print(f"| {r['model']} | {r['type']} | {r['test']} | {r['threads']} | {r['tok_s_min']:.1f} | {r['tok_s_median']:.1f} | "
          f"{r['tok_s_max']:.1f} | {extra} | {r['bandwidth_gb_s']:.1f} |")
PY
echo "wrote bench/RESULTS.md" >&2
