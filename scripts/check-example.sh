#!/usr/bin/env bash
# Checks that plugins can be written outside this tree: installs a built semline to a temporary
# prefix, builds each example (examples/sampler-typical, examples/ffn-sparse,
# examples/proposer-corpus) against that
# installed SDK only, installs it beside semline's own plugins, checks that it exports nothing of
# its own but the entry point, and that `semline plugins` from
# the prefix lists it and that a config selects it in a run (the sampler, the proposer) and an A/B
# bench (the feed-forward variant against ffn/dense) without rebuilding semline. The sampler that bans a word in
# docs/plugin-authoring.md is built from the page itself the same way and must keep its word out of
# a run.
#
# usage: scripts/check-example.sh BUILD_DIR     (a configured and built semline build tree)
set -euo pipefail

if [[ $# -ne 1 || ! -f "$1/CMakeCache.txt" ]]; then
  echo "usage: $0 BUILD_DIR   (a configured and built semline build tree)" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

echo "== installing $build to $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }

# build_example NAME [SOURCE_DIR]: builds and installs examples/NAME (or SOURCE_DIR, configured
# without a build type, as a first-time author would); prints the installed plugin's path.
build_example() {
  local name=$1 src=${2:-$source_dir/examples/$1}
  local build_type=()
  [[ $# -eq 1 ]] && build_type=(-DCMAKE_BUILD_TYPE=Release)
  echo "== building $src against the installed SDK" >&2
  cmake -S "$src" -B "$work/$name" "${generator[@]}" "${build_type[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_INSTALL_PREFIX="$prefix" \
    >"$work/configure-$name.log" || { cat "$work/configure-$name.log" >&2; exit 1; }
  cmake --build "$work/$name" >&2
  cmake --install "$work/$name" >"$work/install-$name.log"
  local plugin
  plugin=$(find "$prefix" -name "libsemline-$name.so" -path '*/semline/plugins/*')
  if [[ -z "$plugin" ]]; then
    echo "FAIL: libsemline-$name.so was not installed into <prefix>/.../semline/plugins" >&2
    exit 1
  fi
  # Symbols of the C++ standard library may be exported as vague linkage; anything else but the
  # entry point would mean the plugin's own symbols leak into the process.
  local exported
  exported=$(nm -D --defined-only --demangle "$plugin" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' |
    grep -v -e 'std::' -e '__gnu_cxx::' || true)
  if [[ "$exported" != "semline_plugin_entry" ]]; then
    echo "FAIL: $plugin must export only semline_plugin_entry; it exports:" >&2
    echo "$exported" >&2
    exit 1
  fi
  echo "== installed $plugin, which exports only semline_plugin_entry" >&2
  echo "$plugin"
}

# The guide's first C++ block, as a project of its own.
guide="$work/guide-src"
mkdir -p "$guide"
awk '/^```cpp$/ { if (!done) inside = 1; next } /^```$/ { if (inside) done = 1; inside = 0 } inside' \
  "$source_dir/docs/plugin-authoring.md" >"$guide/ban_word.cpp"
cat >"$guide/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(ban_word CXX)
find_package(semline 0.1 REQUIRED)
semline_add_plugin(ban-word ban_word.cpp)
CMAKE

typical=$(build_example sampler-typical)
sparse=$(build_example ffn-sparse)
corpus=$(build_example proposer-corpus)
ban_word=$(build_example ban-word "$guide")
grep -q "no CMAKE_BUILD_TYPE, so the plugin is built optimised" "$work/configure-ban-word.log" ||
  { echo "FAIL: a plugin configured without a build type was not built optimised" >&2; exit 1; }

if [[ ! -x "$build/bin/semline" ]]; then
  echo "FAIL: $build/bin/semline is not built: the examples cannot be listed, run or benched" >&2
  exit 1
fi

# The installed command finds plugins installed under its own prefix, with no search path set.
listing=$(env -u SEMLINE_PLUGIN_PATH "$prefix/bin/semline" plugins)
for want in "sampler-typical:typical_p" "ffn-sparse:sparsity" "ban-word:word" "proposer-corpus:min_match"; do
  plugin=${want%%:*} param=${want#*:}
  if ! grep -q "$plugin" <<<"$listing" || ! grep -q "$param" <<<"$listing" ||
     grep -q "refused: .*$plugin" <<<"$listing"; then
    echo "FAIL: '$prefix/bin/semline plugins' does not list $plugin with its parameter $param:" >&2
    echo "$listing" >&2
    exit 1
  fi
done
grep -E -A3 "typical|sparse" <<<"$listing" | sed 's/^/   /'
echo "== semline plugins lists sampler-typical, ffn-sparse, ban-word and proposer-corpus"

# Selected by config, from the build tree's semline (not rebuilt), via the plugin path.
only_examples="$work/only-examples"
mkdir -p "$only_examples"
cp "$typical" "$sparse" "$ban_word" "$corpus" "$only_examples/"
text=$(SEMLINE_PLUGIN_PATH="$only_examples" "$build/bin/semline" -q run \
  -m "$source_dir/models/gguf/stories260K.gguf" -p "Once upon a time" -n 24 \
  --set 'stages.sampler.chain=["top_k", "typical", "draw"]' --set stages.sampler.typical_p=0.9)
if [[ "$text" != "Once upon a time"* ]]; then
  echo "FAIL: a run with the typical sampler in the chain produced: $text" >&2
  exit 1
fi
echo "   $text"
echo "== a config selects the typical sampler; semline ran it without a rebuild"

# The guide's sampler keeps its word out of the greedy story, which has it in its first sentence.
text=$(SEMLINE_PLUGIN_PATH="$only_examples" "$build/bin/semline" -q run \
  -m "$source_dir/models/gguf/stories260K.gguf" -p "Once upon a time" -n 60 \
  --set 'stages.sampler.chain=["ban_word", "greedy"]' --set stages.sampler.ban_word.word=Lily)
if [[ "$text" != "Once upon a time, there was a little girl named "* || "$text" == *Lily* ]]; then
  echo "FAIL: a run with the guide's ban_word sampler (word Lily) produced: $text" >&2
  exit 1
fi
echo "   $text"
echo "== the sampler in docs/plugin-authoring.md, built from the page, kept 'Lily' out of the story"

# The proposer drafts from a text file holding the story the model tells: the same text, faster.
run_story() {  # the text on stdout; the closing line (stderr) in $work/closing
  SEMLINE_PLUGIN_PATH="$only_examples" "$build/bin/semline" run -m "$source_dir/models/gguf/stories260K.gguf" \
    -p "Once upon a time" -n 80 --greedy "$@" 2>"$work/closing"
}
plain=$(run_story)
printf '%s\n' "$plain" >"$work/corpus.txt"
drafted=$(run_story --spec corpus --set speculative.corpus="$work/corpus.txt")
closing=$(tail -1 "$work/closing")
if [[ "$drafted" != "$plain" || "$closing" != *"| corpus: "*" drafts accepted"* ]]; then
  echo "FAIL: a run with the corpus proposer changed the text or reported no drafts:" >&2
  printf '%s\n---\n%s\n%s\n' "$plain" "$drafted" "$closing" >&2
  exit 1
fi
echo "   ${closing##*| }"
echo "== a config selects the corpus proposer; same text, drafts accepted, without a rebuild"

# The A/B bench: ffn/dense against the example's ffn/sparse, chosen in a second config that
# brings the plugin's folder itself.
cat >"$work/dense.toml" <<TOML
[model]
path = "$source_dir/models/gguf/stories260K.gguf"
TOML
cat >"$work/sparse.toml" <<TOML
[model]
path = "$source_dir/models/gguf/stories260K.gguf"
[runtime]
plugin_paths = ["$only_examples"]
[stages]
ffn = { variant = "sparse", sparsity = 0.25 }
TOML
env -u SEMLINE_PLUGIN_PATH "$build/bin/semline" -q bench -c "$work/dense.toml" --vs "$work/sparse.toml" \
  -p 16 -n 8 -r 1 --text "$source_dir/tests/data/story.txt" --window 64 --windows 2 -o json >"$work/ab.json"
if ! python3 - "$work/ab.json" <<'PY'
import json, sys
dense, sparse = json.load(open(sys.argv[1]))
# The base variant agrees with itself; the approximation moves the distribution, measurably.
assert dense["mean_kl"] == 0 and sparse["mean_kl"] > 0, (dense["mean_kl"], sparse["mean_kl"])
assert sparse["tg_tps"] > 0 and sparse["scored_tokens"] > 0
print("   sparse vs dense: KL %.4f, top-1 %.3f, tg %.0f vs %.0f t/s" %
      (sparse["mean_kl"], sparse["top1_agreement"], sparse["tg_tps"], dense["tg_tps"]))
PY
then
  echo "FAIL: the A/B bench of ffn/sparse against ffn/dense did not report as expected:" >&2
  cat "$work/ab.json" >&2
  exit 1
fi
echo "== semline bench compared ffn/dense with the example's ffn/sparse without a rebuild"
echo "OK"
