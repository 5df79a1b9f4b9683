#!/usr/bin/env bash
# Serving benchmarks on one GGUF, semline beside llama.cpp in the same minutes (docs/benchmarks.md):
#   1. decode throughput at 1, 8 and 32 streams: semline's engine (semline serve under
#      `semline bench serve`) and llama.cpp's (llama-batched-bench, and llama-server -np 32 under
#      the same load tool), with semline's single-stream decode (semline bench -n 128) beside;
#   2. time to first token with a 1000-token prefix cold and cached (semline serve).
#
#   usage: scripts/bench-serve.sh MODEL.gguf [LLAMA_BIN_DIR]
#     LLAMA_BIN_DIR  llama.cpp's build/bin (llama-batched-bench, llama-server); without it only
#                    semline is measured
#   THREADS=2 REQUESTS=2 MAX_TOKENS=128 PROMPT_WORDS=48 KV=f16 scripts/bench-serve.sh ...   (the defaults)
#   KV=q8_0 ...   both engines' KV cache in Q8_0 (llama.cpp: -ctk/-ctv q8_0 with flash attention)
#   SET=backends.cpu.isa=avx512 ...   a --set override for semline's own runs
set -euo pipefail
[ $# -ge 1 ] || { sed -n "2,13p" "$0"; exit 2; }
model=$1
llama=${2:-}
cd "$(dirname "$0")/.."
semline=build/bin/semline
threads=${THREADS:-2}
per=${REQUESTS:-2}          # requests per client and round
max_tokens=${MAX_TOKENS:-128}
words=${PROMPT_WORDS:-48}
kv=${KV:-f16}
llama_kv=()
[ "$kv" = f16 ] || llama_kv=(-ctk "$kv" -ctv "$kv" -fa on)
port=18431
name=$(basename "$model" .gguf)
extra=()
[ -n "${SET:-}" ] && extra=(--set "$SET")

wait_up() {  # URL
  for _ in $(seq 1 600); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "no server at $1" >&2; return 1
}

load() {  # URL: one round per concurrency
  for c in 1 8 32; do
    "$semline" -q bench serve --url "$1" --concurrency "$c" --requests $((c * per)) --max-tokens "$max_tokens" \
      --prompt-words "$words" -o json
  done
}

echo "## $name, $threads threads, KV $kv ${SET:-} $(date -u +%Y-%m-%dT%H:%MZ)"
echo "### semline bench (single stream)"
"$semline" -q bench -m "$model" -p 0 -n "$max_tokens" -r 3 -t "$threads" --set kv_cache.dtype="$kv" "${extra[@]}"

echo "### semline serve --parallel 32, semline bench serve"
"$semline" -q serve -m "$model" --port "$port" --parallel 32 --set runtime.threads="$threads" \
  --set runtime.context=2048 --set kv_cache.dtype="$kv" "${extra[@]}" >/dev/null &
pid=$!
wait_up "http://127.0.0.1:$port"
load "http://127.0.0.1:$port"

echo "### semline serve: time to first token with a 1000-token prefix, cold (1 request), then cached (4 more)"
prefix=$(mktemp)
for _ in $(seq 1 112); do printf 'the little dog ran to the big tree. '; done >"$prefix"
"$semline" -q bench serve --url "http://127.0.0.1:$port" --prompt-file "$prefix" --concurrency 1 --requests 1 --max-tokens 1
"$semline" -q bench serve --url "http://127.0.0.1:$port" --prompt-file "$prefix" --concurrency 1 --requests 4 --max-tokens 1
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^semline:prefix_cache_(queries|hits)'
rm -f "$prefix"
kill -TERM "$pid"; wait "$pid" || true

[ -n "$llama" ] || exit 0
echo "### llama-batched-bench -npl 1,8,32"
"$llama/llama-batched-bench" -m "$model" -c 16384 -b 2048 -ub 512 -npp 64 -ntg "$max_tokens" -npl 1,8,32 \
  -t "$threads" "${llama_kv[@]}" 2>/dev/null | grep -E '^\|'

echo "### llama-server -np 32, semline bench serve"
"$llama/llama-server" -m "$model" --port $((port + 1)) -np 32 -c $((32 * 512)) -t "$threads" "${llama_kv[@]}" >/dev/null 2>&1 &
pid=$!
wait_up "http://127.0.0.1:$((port + 1))"
load "http://127.0.0.1:$((port + 1))"
kill -TERM "$pid"; wait "$pid" || true
