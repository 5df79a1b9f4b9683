#!/usr/bin/env bash
# Builds the libFuzzer harnesses (the `fuzz` preset: clang, ASan + UBSan, into build-fuzz) and runs
# each for SECONDS on a scratch copy of its committed corpus (tests/fuzz/corpus/<target>) with its
# dictionary, so the tree stays clean. On a crash, leak, timeout or memory blow-up it prints the
# reproducer's path, a hex dump of it and the command that replays it, and fails.
#   scripts/fuzz.sh [SECONDS] [TARGET...]   SECONDS per target (default 60); default: every target
#   JOBS=N            build jobs (default: all cores)
#   FUZZ_WORK=DIR     scratch corpora, logs and reproducers (default: a new temporary folder)
#   FUZZ_RUNS=N       stop each target after N executions instead (SECONDS is then a ceiling, 0 none)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_gguf fuzz_config fuzz_llama2c fuzz_tokenizer_spm fuzz_tokenizer_bpe fuzz_safetensors
                                     fuzz_tokenizer_json fuzz_request)
jobs=${JOBS:-$(nproc)}
work=${FUZZ_WORK:-$(mktemp -d -t semline-fuzz.XXXXXX)}

echo "== build (preset fuzz, build-fuzz)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs"

# Model files need room for a header and a few tensors; text inputs stay short so that each
# execution is quick.
max_len() {
  case $1 in
    fuzz_gguf | fuzz_llama2c | fuzz_safetensors) echo 32768 ;;
    fuzz_tokenizer_json) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

failed=()
for t in "${targets[@]}"; do
  exe=build-fuzz/fuzz/$t
  [ -x "$exe" ] || { echo "fuzz.sh: no harness $exe (targets: fuzz_gguf fuzz_config fuzz_llama2c fuzz_tokenizer_spm fuzz_tokenizer_bpe fuzz_safetensors fuzz_tokenizer_json fuzz_request)" >&2; exit 2; }
  dir=$work/$t
  mkdir -p "$dir/corpus"
  cp -R "tests/fuzz/corpus/$t/." "$dir/corpus/"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")"
        -artifact_prefix="$dir/" -print_final_stats=1)
  [ -n "${FUZZ_RUNS:-}" ] && args+=(-runs="$FUZZ_RUNS")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  echo "== $t: ${seconds}s, log $dir/log"
  status=0
  "$exe" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$dir/log" || true
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    echo "---- $t failed (exit $status); the end of its log:"
    tail -n 60 "$dir/log"
    for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* "$dir"/slow-unit-*; do
      [ -e "$a" ] || continue
      echo "---- reproducer: $a ($(wc -c <"$a") bytes); replay: $exe $a"
      od -A x -t x1z -v "$a" | head -n 64
    done
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${failed[*]} failed; reproducers and logs under $work" >&2
  exit 1
fi
echo "== every target ran ${seconds}s without a finding (work: $work)"
