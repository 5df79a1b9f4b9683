#!/usr/bin/env bash
# Two builds of semline on the same files, interleaved so that both see the same minutes: each
# round runs every test once with build A and once with build B (A first on even rounds, B first
# on odd ones). Prints, per model and test, the median tokens/s of each build and the median of
# the rounds' B/A ratios — the figure a before/after comparison in docs/benchmarks.md quotes.
#
#   scripts/bench-builds.sh BUILD_A BUILD_B MODEL.gguf [MODEL.gguf ...]
#   env: THREADS (2), PROMPT (512), GEN (128), ROUNDS (7), REPS (1: semline bench -r per run),
#        SET (a --set override for both, e.g. runtime.backend=vulkan)
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,10p' "$0"; exit 2; }
a=$1 b=$2
shift 2
threads=${THREADS:-2} prompt=${PROMPT:-512} gen=${GEN:-128} rounds=${ROUNDS:-7} reps=${REPS:-1}
extra=()
[ -n "${SET:-}" ] && extra=(--set "$SET")
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run() {  # build label model round
  "$1/bin/semline" -q bench -m "$3" -t "$threads" -p "$prompt" -n "$gen" -r "$reps" -o csv "${extra[@]}" |
    awk -F, -v who="$2" -v round="$4" -v model="$(basename "$3")" \
      'NR > 1 { test = ($7 > 0 ? "pp" $7 : "tg" $8); print model, test, round, who, $11 }' >> "$out"
}

for model in "$@"; do
  for ((r = 0; r < rounds; ++r)); do
    if ((r % 2 == 0)); then run "$a" A "$model" "$r"; run "$b" B "$model" "$r"
    else run "$b" B "$model" "$r"; run "$a" A "$model" "$r"; fi
  done
done

python3 - "$out" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    model, test, rnd, who, ts = line.split()
    runs.setdefault((model, test), {}).setdefault(rnd, {})[who] = float(ts)
print("| model | test | A t/s (median) | B t/s (median) | B/A (median of rounds) | B/A range |")
print("|---|---|---:|---:|---:|---:|")
for (model, test), by_round in runs.items():
    pairs = [r for r in by_round.values() if "A" in r and "B" in r]
    ratios = [r["B"] / r["A"] for r in pairs]
    print(f"| {model} | {test} | {statistics.median(r['A'] for r in pairs):.1f} | "
          f"{statistics.median(r['B'] for r in pairs):.1f} | {statistics.median(ratios):.3f} | "
          f"{min(ratios):.2f}-{max(ratios):.2f} |")
EOF
