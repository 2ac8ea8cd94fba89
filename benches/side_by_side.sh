#!/usr/bin/env bash
# Ours and llama.cpp on the same random-weight GGUF files, 2 threads, alternating, two rounds
# (the figures in docs/PERFORMANCE.md). Needs a release build and ../shared/bench.
#
#   bash benches/side_by_side.sh [DIR]      # DIR holds the test files (default /tmp/bench)
#
# Missing TinyLlama-shape files are generated with `make-test-model`; the LLaMA-2-7B shape is
# generated, measured once and deleted (3.5 GiB).
set -u
cd "$(dirname "$0")/.."
dir=${1:-/tmp/bench}
ours=./target/release/llama-dialogue
ref="bash ${LLAMA_DIALOGUE_BENCH:-../shared/bench}/llama_cpp_bench.sh"
vocab=tests/models/ggml-vocab-llama-spm.gguf
mkdir -p "$dir"
make_model() { # SHAPE QUANT OUT
  [ -f "$3" ] || $ours make-test-model --shape "$1" --quant "$2" --vocab "$vocab" --out "$3" 2>&1 | tail -1
}
for q in q4_0 q8_0; do make_model tinyllama-1.1b $q "$dir/tinyllama-$q.gguf"; done
for round in 1 2; do
  for q in q4_0 q8_0; do
    f=$dir/tinyllama-$q.gguf
    echo "=== round $round tinyllama-1.1b $q ours"
    $ours --threads 2 bench --model "$f" --json 2>/dev/null
    echo "=== round $round tinyllama-1.1b $q llama.cpp"
    $ref bench "$f" 2 256 64 2>/dev/null | sed -n 3,4p
  done
done
big=$dir/llama2-7b-q4_0.gguf
make_model llama2-7b q4_0 "$big"
echo "=== llama2-7b q4_0 ours (reps 1)"
$ours --threads 2 bench --model "$big" --reps 1 --json 2>/dev/null
echo "=== llama2-7b q4_0 llama.cpp"
$ref bench "$big" 2 256 64 2>/dev/null | sed -n 3,4p
rm -f "$big"
