#!/usr/bin/env bash
# Perplexity of the quantized models against the F32 figure, through the CLI as a user runs it.
#
# stories260K (../shared) is converted to F32 and quantized to Q8_0, Q4_0 and Q4_K; each model
# scores the F32 reference's own greedy stream from stories260K.greedy.txt (BOS, then the 200
# argmax ids: 201 ids, one window of 200, the usual second-half scoring: 99 scored tokens), with
# every kernel ISA (MINNOW_ISA=scalar|avx2|avx512; a CPU without one falls back with a warning).
#
# Two kinds of bound, set from the figures measured (x86-64 with AVX-512, listed below):
#  1. quantized PPL / F32 PPL, with the default KV cache (f16 for quantized models). This model is
#     tiny (dim 64) and very sensitive to weight noise (see tests/unit/test_golden_stories.c):
#     rounding the weights to Q8_0 alone, computed in f32 (the "twin" below), costs +5.2%, so the
#     1% a large model gets at Q8_0 is out of reach here for any kernel; Q4_0 multiplies PPL ~15x.
#     This bound catches a broken quantizer (from_f32), which the twin check cannot see.
#  2. quantized PPL / PPL of its twin: the same quantized weights dequantized back to F32 by the
#     reference to_f32 and run with f32 kernels, f32 KV cache on both sides. The difference is
#     what the engine adds (Q8_0 activations, SIMD summation order), and that is where Q8_0's 1%
#     holds. It catches a broken gemm (one 200-token batch) or vec_dot (-b 1, token by token),
#     which the twin does not use, and a broken to_f32, which the twin uses and they do not.
#     Checked by breaking kernels on purpose: Q4_0 to_f32 scale x1.05 gives x0.55 against the
#     twin; the AVX2 Q4_0 vec_dot scale x1.03 on even blocks x1.20; one row in 16 of the AVX-512
#     Q8_0 gemm x1.02 x1.030 (bound 1 let that one through: x1.082); the AVX2 Q4_K vec_dot mins
#     x1.05 x1.010 (synth model); Q4_0 quantizer scale max/6 x21.9 against F32 (bound 1);
#     Q8_0 quantizer truncating instead of rounding x1.23 against F32 (bound 1).
#
# Q4_K: no tensor of stories260K can be K-quantized (rows of 64 and 172, K-quant blocks are 256),
# so `quantize q4_K` falls back to q4_0 (64-wide rows) and f16 (ffn_down, 172-wide): its file
# holds the Q4_0 model's tensors, which this test checks (same PPL). The Q4_K bounds are asserted
# on a model where K-quantization applies: `minnow synth --arch stories15m` (random weights, vocab
# cut to 512), whose ffn_down rows are 768 = 3 x 256 wide (6 tensors go Q4_K; the 288-wide rest
# fall back to q4_0), scoring its own F32 greedy stream (BOS + 127 ids, one window of 128).
set -u
shared=${MINNOW_SHARED:-}
bin=${MINNOW_BIN:-}
if [ -z "$shared" ] || [ ! -f "$shared/models/stories260K.bin" ]; then
  echo "skipped: ../shared/models/stories260K.bin not found"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- bounds (measured: min..max over scalar/avx2/avx512 and, for twins, -b 200 and -b 1) ----
# stories260K vs F32 (2.4923, every ISA), default KV: Q8_0 2.6589..2.6591 (x1.0668..x1.0669);
# Q4_0 = Q4_K 38.44..38.76 (x15.42..x15.55)
Q8_VS_F32_MAX=1.10
Q4_VS_F32_MAX=18
# stories260K vs twin (f32 KV): Q8_0 2.6159..2.6320 vs 2.6224 (x0.9975..x1.0037; the spread is
# the Q8_0 activations: a last-bit difference flips a rounding step and this model feels it);
# Q4_0 38.655..38.678 vs 39.137 (x0.9877..x0.9882: at PPL ~39 every logit error shows, and here
# the activations' rounding happens to help)
TWIN_Q8_TOL=0.01
TWIN_Q4_TOL=0.04
# synth stories15m (avx2, avx512; -b 128 and -b 1), f32 KV: F32 130.507, twin 130.134, Q4_K
# 129.997..130.058: vs F32 x0.9961..x0.9966, vs twin x0.9989..x0.9994
SYN_Q4K_VS_F32_TOL=0.02
SYN_TWIN_Q4K_TOL=0.005

fail() { echo "FAIL: $*"; exit 1; }

# ppl VAR MODEL IDS CTX [extra flags]: sets VAR to the PPL figure of `minnow perplexity --json`
# (a variable, not $(...), so that fail() ends the script and not a subshell)
ppl() {
  local var=$1 m=$2 ids=$3 c=$4; shift 4
  local out v
  out=$("$bin" perplexity -m "$m" --tokens-file "$ids" -c "$c" -t 1 --json "$@" 2>"$tmp/ppl.err") \
    || { cat "$tmp/ppl.err"; fail "perplexity -m $(basename "$m") $* exited non-zero"; }
  grep -q "not supported by this CPU" "$tmp/ppl.err" && echo "note: $(grep -m1 warning "$tmp/ppl.err")"
  v=$(echo "$out" | sed -n 's/.*"ppl": *\([0-9.]*\).*/\1/p')
  [ -n "$v" ] || fail "perplexity -m $(basename "$m") $*: no PPL in '$out'"
  printf -v "$var" '%s' "$v"
}

# within LABEL VALUE REF LO HI: LO <= VALUE/REF <= HI, printed either way
within() {
  local r
  r=$(awk -v v="$2" -v r="$3" 'BEGIN { printf "%.4f", v / r }')
  if awk -v x="$r" -v lo="$4" -v hi="$5" 'BEGIN { exit !(x >= lo && x <= hi) }'; then
    echo "ok: $1: $2 / $3 = x$r (bound x$4..x$5)"
  else
    fail "$1: $2 / $3 = x$r is outside x$4..x$5"
  fi
}

# n_type FILE TYPE: how many tensors of FILE have TYPE
# (prints "inspect-failed" on error, which the callers' integer tests reject)
n_type() {
  "$bin" inspect "$1" >"$tmp/inspect" 2>&1 || { echo inspect-failed; return; }
  awk -v t="$2" '$3 == t { n++ } END { print n + 0 }' "$tmp/inspect"
}

quantize() { # IN OUT TYPE
  "$bin" quantize "$1" "$2" "$3" 2>"$tmp/q.err" || { cat "$tmp/q.err"; fail "quantize $(basename "$1") $3"; }
}

# ---- stories260K ----
"$bin" convert llama2c "$shared/models/stories260K.bin" "$tmp/f32.gguf" 2>"$tmp/convert.err" \
  || { cat "$tmp/convert.err"; fail "convert"; }
awk '!/^#/ { print $2; last = $3 } END { print last }' "$shared/models/stories260K.greedy.txt" >"$tmp/ids"
[ "$(wc -l <"$tmp/ids")" -eq 201 ] || fail "expected 201 ids from the golden file"
for t in q8_0 q4_0 q4_K; do
  quantize "$tmp/f32.gguf" "$tmp/$t.gguf" $t
  if [ $t = q4_K ]; then cp "$tmp/q.err" "$tmp/q4k.notes"; continue; fi
  "$bin" quantize "$tmp/$t.gguf" "$tmp/twin_$t.gguf" f32 2>/dev/null || fail "dequantize $t to f32"
done
n_k=$(n_type "$tmp/q4_K.gguf" q4_K)
echo "note: stories260K q4_K file: $n_k tensors q4_K, $(n_type "$tmp/q4_K.gguf" q4_0) q4_0," \
  "$(n_type "$tmp/q4_K.gguf" f16) f16 ($(grep -c 'do not fit q4_K' "$tmp/q4k.notes") fallbacks reported by quantize)"
[ "$n_k" -eq 0 ] || fail "stories260K now has $n_k q4_K tensors: give Q4_K its own bounds here"

# plus_minus TOL: "LO HI" for a ratio within 1 -+ TOL
plus_minus() { awk -v t="$1" 'BEGIN { print 1 - t, 1 + t }'; }

# The twins are f32 models: every ISA gives their figure to ~1e-6, so they are measured once, as
# the q4_K file is (it holds the same tensors as the q4_0 file, so it must give the same figure).
ppl tw_q8_0 "$tmp/twin_q8_0.gguf" "$tmp/ids" 200 --kv-type f32
ppl tw_q4_0 "$tmp/twin_q4_0.gguf" "$tmp/ids" 200 --kv-type f32
ppl q4k "$tmp/q4_K.gguf" "$tmp/ids" 200
for isa in scalar avx2 avx512; do
  export MINNOW_ISA=$isa
  ppl f32 "$tmp/f32.gguf" "$tmp/ids" 200
  ppl q8 "$tmp/q8_0.gguf" "$tmp/ids" 200
  ppl q4 "$tmp/q4_0.gguf" "$tmp/ids" 200
  echo "stories260K $isa: PPL f32 $f32, q8_0 $q8, q4_0 $q4"
  within "$isa q8_0 vs f32" "$q8" "$f32" 0 $Q8_VS_F32_MAX
  within "$isa q4_0 vs f32" "$q4" "$f32" 0 $Q4_VS_F32_MAX
  # -b 200: one batch, the gemm kernels; -b 1: token by token, the vec_dot kernels (the scalar
  # table's gemm is its vec_dot row by row: one run covers both)
  bs="200 1"; [ $isa = scalar ] && bs=200
  for t in q8_0 q4_0; do
    tol=$TWIN_Q8_TOL; [ $t = q4_0 ] && tol=$TWIN_Q4_TOL
    tw_var=tw_$t; tw=${!tw_var}
    for b in $bs; do
      ppl q "$tmp/$t.gguf" "$tmp/ids" 200 --kv-type f32 -b $b
      within "$isa $t -b $b vs its f32 twin" "$q" "$tw" $(plus_minus $tol)
    done
  done
done
unset MINNOW_ISA
ppl q4 "$tmp/q4_0.gguf" "$tmp/ids" 200
echo "stories260K q4_K (= q4_0 + f16 fallbacks): PPL $q4k"
[ "$q4k" = "$q4" ] || fail "the q4_K file (no K tensor) gives $q4k, its q4_0 tensors give $q4"

# ---- Q4_K where it applies: synthetic stories15m shapes ----
"$bin" synth --arch stories15m --type f32 --vocab-size 512 --out "$tmp/syn.gguf" 2>/dev/null || fail "synth"
quantize "$tmp/syn.gguf" "$tmp/syn_q4_K.gguf" q4_K
"$bin" quantize "$tmp/syn_q4_K.gguf" "$tmp/syn_twin.gguf" f32 2>/dev/null || fail "dequantize synth q4_K"
n_k=$(n_type "$tmp/syn_q4_K.gguf" q4_K)
echo "note: synth stories15m q4_K file: $n_k tensors q4_K (ffn_down), $(n_type "$tmp/syn_q4_K.gguf" q4_0) q4_0"
[ "$n_k" -eq 6 ] || fail "expected the 6 ffn_down tensors of stories15m in q4_K, got $n_k"
{ echo 1; "$bin" run -m "$tmp/syn.gguf" --tokens 1 -n 127 --temp 0 --ids -t 1 2>/dev/null | tr ' ' '\n'; } >"$tmp/syn_ids"
[ "$(wc -w <"$tmp/syn_ids")" -eq 128 ] || fail "synth greedy run gave $(wc -w <"$tmp/syn_ids") ids, want 128"
# f32 models give the same figure with every ISA (to ~1e-7): measured once, with the best one.
# The scalar table is left out here: at 15M-model shapes a run takes several seconds in the
# sanitizer build (most weights are q4_0), and the reference K-quant kernels are checked, with
# every SIMD table, by tests/unit/test_kquants.c.
ppl f32 "$tmp/syn.gguf" "$tmp/syn_ids" 128
ppl tw "$tmp/syn_twin.gguf" "$tmp/syn_ids" 128
for isa in avx2 avx512; do
  export MINNOW_ISA=$isa
  for b in 128 1; do
    ppl q "$tmp/syn_q4_K.gguf" "$tmp/syn_ids" 128 --kv-type f32 -b $b
    echo "synth stories15m $isa -b $b: PPL f32 $f32, q4_K $q (f32 KV), its f32 twin $tw"
    within "$isa synth q4_K -b $b vs f32" "$q" "$f32" $(plus_minus $SYN_Q4K_VS_F32_TOL)
    within "$isa synth q4_K -b $b vs its f32 twin" "$q" "$tw" $(plus_minus $SYN_TWIN_Q4K_TOL)
  done
done
unset MINNOW_ISA
# the flag this test added to `minnow perplexity`: a bad value is a usage error
"$bin" perplexity -m "$tmp/f32.gguf" --tokens-file "$tmp/ids" --kv-type f8 >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "kv-type must be" "$tmp/err" || { cat "$tmp/err"; fail "--kv-type f8 is not a usage error"; }
echo "ok: perplexity bounds hold with every kernel ISA"
