#!/usr/bin/env bash
# Decode (and prompt) speed in pairs: ours `bench --reps 1`, then llama-bench `-r 1`, five times
# per file, so that both see the same moment of a shared machine. Run benches/side_by_side.sh
# first (it builds llama.cpp and makes the files).
#
#   bash benches/paired_decode.sh [DIR]
set -u
cd "$(dirname "$0")/.."
dir=${1:-/tmp/bench}
lb=$(bash "${LLAMA_DIALOGUE_BENCH:-../shared/bench}/llama_cpp_bench.sh" path)/llama-bench
for q in q4_0 q8_0; do
  f=$dir/tinyllama-$q.gguf
  for i in 1 2 3 4 5; do
    o=$(./target/release/llama-dialogue --threads 2 bench --model "$f" --reps 1 --json 2>/dev/null |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f %.1f" % (d["decode_tok_s"], d["prompt_tok_s"]))')
    l=$(LD_LIBRARY_PATH=$(dirname "$lb") "$lb" -m "$f" -t 2 -p 256 -n 64 -r 1 -o json 2>/dev/null |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%.2f" % r["avg_ts"] for r in d))')
    echo "$q pair $i ours(decode prompt)=$o llama.cpp(pp tg)=$l"
  done
done
