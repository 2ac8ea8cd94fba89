#!/usr/bin/env bash
# Ours and llama.cpp on the same random-weight GGUF files, 2 threads, alternating (the figures in
# docs/PERFORMANCE.md). Needs a release build of the CLI and ../shared/bench (llama.cpp, pinned).
#
#   bash benches/side_by_side.sh [DIR] [ROUNDS]   # DIR holds the files (default /tmp/bench)
#
# Files: an F16 file of the TinyLlama-1.1B shape from `make-test-model` (real LLaMA-2 vocabulary,
# random weights), quantized by llama.cpp's own `llama-quantize` to Q4_0, Q8_0, Q4_K_M and
# Q5_K_M, so both programs read byte-identical files. Each file is measured at our AVX-512 level
# against llama.cpp's native build, and at our AVX2 level (LLAMA_DIALOGUE_CPU=avx2, with and
# without AVX-VNNI) against llama.cpp built for AVX2 only (LLAMA_CPP_REF_VARIANT=avx2, which
# has no VNNI). BIG=1 adds the LLaMA-2-7B and LLaMA-2-13B Q4_K_M shapes once each (their F16
# files, 13 and 26 GB, are deleted after).
#
# LLAMA_CPP_NATIVE_BIN=DIR runs DIR/llama-bench as the native reference instead of the shared
# script's build: on CPUs with AMX whose kernel does not grant the AMX state (as in the VMs
# here), llama.cpp's native build crashes in its AMX path, so the figures in
# docs/PERFORMANCE.md use the same llama.cpp sources built with every AVX-512 option on and AMX
# off (the cmake line is in docs/PERFORMANCE.md).
set -u
cd "$(dirname "$0")/.."
dir=${1:-/tmp/bench}
rounds=${2:-2}
ours=${LLAMA_DIALOGUE_BIN:-./target/release/llama-dialogue}
bench=${LLAMA_DIALOGUE_BENCH:-../shared/bench}/llama_cpp_bench.sh
vocab=tests/models/ggml-vocab-llama-spm.gguf
mkdir -p "$dir"

make_f16() { # SHAPE OUT
  [ -f "$2" ] || $ours make-test-model --shape "$1" --quant f16 --vocab "$vocab" --out "$2" 2>&1 | tail -1
}
quantize() { # F16 TYPE OUT
  [ -f "$3" ] || bash "$bench" quantize "$1" "$3" "$2" > "$3.log" 2>&1
}
ours_json() { # LEVEL FILE [REPS]
  LLAMA_DIALOGUE_CPU=$1 $ours --threads 2 bench --model "$2" --reps "${3:-3}" --json 2>/dev/null
}
theirs_md() { # VARIANT FILE
  local bin
  if [ "$1" = native ] && [ -n "${LLAMA_CPP_NATIVE_BIN:-}" ]; then
    bin=$LLAMA_CPP_NATIVE_BIN
  else
    bin=$(LLAMA_CPP_REF_VARIANT=$1 bash "$bench" path)
  fi
  "$bin/llama-bench" -m "$2" -t 2 -p 256 -n 64 -r 3 -o md 2>/dev/null | sed -n 3,4p
}

make_f16 tinyllama-1.1b "$dir/tinyllama-f16.gguf"
types="Q4_0 Q8_0 Q4_K_M Q5_K_M"
for t in $types; do quantize "$dir/tinyllama-f16.gguf" "$t" "$dir/tinyllama-$t.gguf"; done
for round in $(seq 1 "$rounds"); do
  for t in $types; do
    f=$dir/tinyllama-$t.gguf
    echo "=== round $round tinyllama $t ours avx512"; ours_json avx512 "$f"
    echo "=== round $round tinyllama $t llama.cpp native"; theirs_md native "$f"
    echo "=== round $round tinyllama $t ours avx2"; ours_json avx2 "$f"
    echo "=== round $round tinyllama $t ours avx2 without AVX-VNNI"
    LLAMA_DIALOGUE_AVX_VNNI=0 ours_json avx2 "$f"
    echo "=== round $round tinyllama $t llama.cpp avx2"; theirs_md avx2 "$f"
  done
done

if [ "${BIG:-0}" = 1 ]; then
  for shape in llama2-7b llama2-13b; do
    f16=$dir/$shape-f16.gguf
    f=$dir/$shape-Q4_K_M.gguf
    make_f16 "$shape" "$f16"
    quantize "$f16" Q4_K_M "$f"
    rm -f "$f16"
    echo "=== $shape Q4_K_M ours avx512 (reps 1)"; ours_json avx512 "$f" 1
    echo "=== $shape Q4_K_M llama.cpp native"; theirs_md native "$f"
  done
fi
