#!/usr/bin/env bash
# The CLI split across ranks: `mpirun -np 2 semline run` prints the one-process greedy text
# with the blocks split (tensor) and cut into two stages (pipeline), `mpirun -np 4` on a 2 x 2 grid,
# and a rank whose line differs from the leader's (a model with another layer count) stops every
# rank with one message naming the collective it waited for, within the timeout, never hanging.
#   tests/parallel/cli_tp.sh MPIRUN SEMLINE MODELS_DIR
set -euo pipefail
mpirun=$1 semline=$2 models=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }

args=(run -m "$models/gguf/stories260K.gguf" -p "Once upon a time" -n 48 --greedy --set runtime.threads=1)
"$semline" "${args[@]}" > "$work/one.txt" 2>/dev/null
grep -q "there was a little girl named Lily" "$work/one.txt" || fail "unexpected text: $(cat "$work/one.txt")"
for how in tensor pipeline; do
  "$mpirun" --oversubscribe -np 2 "$semline" "${args[@]}" --set parallel.$how=2 > "$work/two.txt" 2> "$work/two.err" ||
    { cat "$work/two.err" >&2; fail "mpirun -np 2 semline run --set parallel.$how=2 exited $?"; }
  diff "$work/one.txt" "$work/two.txt" > /dev/null || fail "$how: the split line's text differs: $(cat "$work/two.txt")"
  echo "ok: two ranks ($how) print the one-process text"
done
# A 2 x 2 grid: two stages of two tensor ranks.
"$mpirun" --oversubscribe -np 4 "$semline" "${args[@]}" --set parallel.tensor=2 --set parallel.pipeline=2 \
  > "$work/four.txt" 2> "$work/four.err" || { cat "$work/four.err" >&2; fail "mpirun -np 4 semline run (2 x 2) exited $?"; }
diff "$work/one.txt" "$work/four.txt" > /dev/null || fail "2 x 2: the split line's text differs: $(cat "$work/four.txt")"
echo "ok: a 2 x 2 grid of ranks prints the one-process text"

# Rank 1 runs a 2-layer model, rank 0 a 3-layer one: rank 0 waits for an all-reduce rank 1 never
# joins, and after timeout_s every rank stops.
"$semline" synth --preset tiny --layers 3 -o "$work/three.gguf" > /dev/null 2>&1
"$semline" synth --preset tiny --layers 2 -o "$work/two.gguf" > /dev/null 2>&1
common=(run -p "hello" -n 4 --greedy --set runtime.threads=1 --set parallel.tensor=2 --set parallel.timeout_s=2)
start=$(date +%s)
status=0
timeout 120 "$mpirun" --oversubscribe -np 1 "$semline" "${common[@]}" -m "$work/three.gguf" : \
  -np 1 "$semline" "${common[@]}" -m "$work/two.gguf" > "$work/bad.out" 2> "$work/bad.err" || status=$?
took=$(( $(date +%s) - start ))
[ "$status" -ne 0 ] || fail "ranks with different lines exited 0"
[ "$status" -ne 124 ] || fail "ranks with different lines hung (killed after 120 s)"
grep -q "stops every rank" "$work/bad.err" || { cat "$work/bad.err" >&2; fail "no message naming the stop"; }
echo "ok: a rank out of step stops every rank in ${took} s (exit $status): $(grep -m1 'stops every rank' "$work/bad.err")"
