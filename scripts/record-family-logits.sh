#!/usr/bin/env bash
# Records llama.cpp's logits and greedy continuation on a synthetic model of each family semline
# runs (tests/line/oracle/NAME.txt, read by tests/line/family_test.cpp): for each family, the first
# seed from 1 whose greedy choices all win by a margin of at least 0.05 (20x below the logits'
# spread, 1000x above the difference two float32 implementations make), so the tests never hinge
# on a near-tie.
#
#   usage: scripts/record-family-logits.sh LLAMA_DIR [SEMLINE]
#     LLAMA_DIR  a llama.cpp checkout built with CMake (include/llama.h, build/bin/libllama.so);
#                the files in the tree were made by llama.cpp dc02e1f8
#     SEMLINE    the semline binary that writes the models (default build/bin/semline)
#   env: LLAMA_BUILD   the build folder under LLAMA_DIR (default build)
#        LLAMA_COMMIT  the commit written in each file (default: git's HEAD in LLAMA_DIR, else "unknown")
#        ONLY          space-separated recording names to make (default: all)
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] && [ -f "$1/include/llama.h" ] || { sed -n "2,14p" "$0"; exit 2; }
llama=$(realpath "$1")
lib="$llama/${LLAMA_BUILD:-build}/bin"
cd "$(dirname "$0")/.."
semline=$(realpath "${2:-build/bin/semline}")
commit=${LLAMA_COMMIT:-$(git -C "$llama" rev-parse --short=8 HEAD 2>/dev/null || echo unknown)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
g++ -std=c++17 -O1 -I"$llama/include" -I"$llama/ggml/include" scripts/oracle/record_logits.cpp \
  -L"$lib" -lllama -lggml -lggml-base -Wl,-rpath,"$lib" -o "$tmp/record_logits"

prompt="1 17 42 99 250 311 7 480"
n_predict=12
out=tests/line/oracle
mkdir -p "$out"
# name | synth arguments (the preset gives the shape; the seed is appended)
families=(
  "llama|--preset tiny --arch llama"
  "llama-rope-freqs|--preset tiny --arch llama --rope-freqs"
  "llama-linear-rope|--preset tiny --arch llama --rope-scale 4"
  "qwen2|--preset tiny --arch qwen2"
  "qwen3|--preset tiny --arch qwen3 --head-dim 32"
  "phi3|--preset tiny --arch phi3"
  "gptneox|--preset tiny --arch gptneox --kv-heads 4"
  "stablelm|--preset tiny --arch stablelm"
  "starcoder2|--preset tiny --arch starcoder2"
  "gemma2|--preset tiny --arch gemma2 --window 4 --attn-softcap 1.5 --final-softcap 4"
  "mamba|--preset tiny --arch mamba"
  "falcon-mamba|--preset tiny --arch mamba --dt-b-c-rms"
  "mamba2|--preset tiny --arch mamba2 --ssm-groups 2"
  "jamba|--preset tiny --arch jamba --layers 4 --experts 4 --experts-used 2"
)
for entry in "${families[@]}"; do
  name=${entry%%|*} args=${entry#*|}
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  for seed in $(seq 1 50); do
    "$semline" synth $args --seed "$seed" -o "$tmp/model.gguf" >/dev/null 2>&1
    # shellcheck disable=SC2086
    "$tmp/record_logits" "$tmp/model.gguf" "$n_predict" $prompt > "$tmp/rec.txt"
    margin=$(sed -n 's/^margin //p' "$tmp/rec.txt")
    if awk -v m="$margin" 'BEGIN { exit !(m >= 0.05) }'; then
      { echo "# llama.cpp $commit, F32 KV cache, no flash attention: scripts/record-family-logits.sh"
        echo "synth $args --seed $seed"
        cat "$tmp/rec.txt"; } > "$out/$name.txt"
      echo "$name: seed $seed, margin $margin"
      continue 2
    fi
  done
  echo "$name: no seed of 1..50 gives a margin of 0.05" >&2
  exit 1
done
