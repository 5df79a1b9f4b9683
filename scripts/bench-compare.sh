#!/usr/bin/env bash
# Runs semline bench and llama.cpp's llama-bench on the same GGUF files with the same settings,
# one after the other, and prints both tables — the figures in docs/benchmarks.md come from this.
#
#   scripts/bench-compare.sh LLAMA_BENCH BUILD_DIR MODEL.gguf [MODEL.gguf ...]
#   env: THREADS (2), PROMPT (512), GEN (128), REPS (5)
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,7p' "$0"; exit 2; }
llama_bench=$1 build=$2
shift 2
threads=${THREADS:-2} prompt=${PROMPT:-512} gen=${GEN:-128} reps=${REPS:-5}
for model in "$@"; do
  echo "## $(basename "$model")  (threads $threads, pp$prompt, tg$gen, $reps repetitions)"
  echo
  echo "semline:"
  "$build/bin/semline" -q bench -m "$model" -t "$threads" -p "$prompt" -n "$gen" -r "$reps"
  echo
  echo "llama.cpp:"
  "$llama_bench" -m "$model" -t "$threads" -p "$prompt" -n "$gen" -r "$reps" -o md 2>/dev/null
  echo
done
