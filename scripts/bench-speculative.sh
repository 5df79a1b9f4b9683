#!/usr/bin/env bash
# Speculative decoding beside plain decoding, semline and llama.cpp on the same files: a draft
# model (TARGET verified, DRAFT drafting) and prompt lookup (ngram / llama-lookup) on a prompt
# that repeats, greedy, each case REPS times in turn; prints every run's decode tokens/s and
# acceptance, the median per case, and each speed-up as the median of the repetitions' ratios to
# their own baseline. The figures in docs/benchmarks.md come from this.
#
#   scripts/bench-speculative.sh LLAMA_BIN_DIR BUILD_DIR TARGET.gguf DRAFT.gguf LOOKUP.gguf
#   env: THREADS (2), GEN (128), REPS (5), K (draft tokens, 4)
set -euo pipefail
[ $# -eq 5 ] || { sed -n '2,8p' "$0"; exit 2; }
llama=$1 build=$2 target=$3 draft=$4 lookup=$5
threads=${THREADS:-2} gen=${GEN:-128} reps=${REPS:-5} k=${K:-4}
semline="$build/bin/semline"
story="Once upon a time there was a"
count="1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# semline: "generation N tokens, X t/s" and the proposer's "A of D drafts accepted"
sl() {  # name model prompt flags...
  local name=$1 model=$2 prompt=$3
  shift 3
  "$semline" run -m "$model" -p "$prompt" -n "$gen" --ignore-eos --temp 0 --set runtime.threads="$threads" "$@" 2>&1 |
    tail -1 | awk '{for (i = 1; i <= NF; ++i) {
                      if ($i == "t/s" && ++n == 2) s = $(i - 1)  # prompt t/s, then generation t/s
                      if ($i == "drafts" && $(i + 1) == "accepted") a = "  (" $(i - 3) " of " $(i - 1) ")"}}
                    END {print s a}' >>"$out/$name"
}
# llama.cpp: "decoded N tokens in S seconds, speed: X t/s", "n_drafted", "n_accept"
lc() {  # name tool flags...
  local name=$1 tool=$2
  shift 2
  "$llama/$tool" -n "$gen" --temp 0 -t "$threads" -c 2048 --ignore-eos "$@" 2>&1 |
    awk '/decoded/ {for (i = 1; i <= NF; ++i) if ($i == "speed:") s = $(i + 1)}
         /n_drafted/ {d = $NF} /n_accept/ {a = $NF}
         END {printf "%s", s; if (d != "") printf "  (%s of %s)", a, d; print ""}' >>"$out/$name"
}
lb() {  # name model: llama-bench's tg
  "$llama/llama-bench" -m "$2" -p 0 -n "$gen" -t "$threads" -r 1 -o csv 2>/dev/null |
    awk -F, 'NR > 1 {gsub(/"/, "", $0); print $(NF - 1)}' >>"$out/$1"
}

for ((r = 0; r < reps; ++r)); do
  sl "semline target plain" "$target" "$story"
  sl "semline target + draft k=$k" "$target" "$story" --draft "$draft" --spec-k "$k"
  sl "semline target + draft k=$k fixed" "$target" "$story" --draft "$draft" --spec-k "$k" --set speculative.adaptive=false
  lb "llama.cpp target plain (llama-bench tg)" "$target"
  lc "llama.cpp target + draft k=$k (llama-speculative)" llama-speculative -m "$target" -md "$draft" -td "$threads" -p "$story" --spec-draft-n-max "$k"
  sl "semline lookup-model plain, counting prompt" "$lookup" "$count"
  sl "semline lookup-model ngram k=$k, counting prompt" "$lookup" "$count" --spec ngram --spec-k "$k"
  sl "semline lookup-model ngram k=$k, story prompt" "$lookup" "$story" --spec ngram --spec-k "$k"
  sl "semline lookup-model plain, story prompt" "$lookup" "$story"
  lb "llama.cpp lookup-model plain (llama-bench tg)" "$lookup"
  lc "llama.cpp lookup-model lookup k=$k, counting prompt (llama-lookup)" llama-lookup -m "$lookup" -p "$count" --spec-draft-n-max "$k"
done

for f in "$out"/*; do
  echo "== $(basename "$f")"
  cat "$f"
  printf 'median: '
  sort -n "$f" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
done
# Speed-ups: each repetition's case over its baseline, run within the same minute (this machine's
# memory bandwidth drifts from minute to minute), and the median of those ratios.
ratio() {  # case baseline
  local ratios
  ratios=$(paste -d' ' <(awk '{print $1}' "$out/$1") <(awk '{print $1}' "$out/$2") | awk '{printf "%.2f\n", $1 / $2}')
  printf 'speed-up of %s: %s; median %sx\n' "$1" "$(tr '\n' ' ' <<<"$ratios")" \
    "$(sort -n <<<"$ratios" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')"
}
echo
ratio "semline target + draft k=$k" "semline target plain"
ratio "semline target + draft k=$k fixed" "semline target plain"
ratio "llama.cpp target + draft k=$k (llama-speculative)" "llama.cpp target plain (llama-bench tg)"
ratio "semline lookup-model ngram k=$k, counting prompt" "semline lookup-model plain, counting prompt"
ratio "semline lookup-model ngram k=$k, story prompt" "semline lookup-model plain, story prompt"
ratio "llama.cpp lookup-model lookup k=$k, counting prompt (llama-lookup)" "llama.cpp lookup-model plain (llama-bench tg)"
