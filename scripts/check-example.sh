#!/usr/bin/env bash
# Checks that a plugin can be written outside this tree: installs a built semline to a temporary
# prefix, builds examples/sampler-typical against that installed SDK only, installs the plugin
# beside semline's own, checks that it exports nothing of its own but the entry point, and, when
# the semline command is built, that `semline plugins` from the prefix lists it.
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

echo "== building examples/sampler-typical against the installed SDK"
cmake -S "$source_dir/examples/sampler-typical" -B "$work/example" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_INSTALL_PREFIX="$prefix" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example"
cmake --install "$work/example" >"$work/install-example.log"

plugin=$(find "$prefix" -name libsemline-sampler-typical.so -path '*/semline/plugins/*')
if [[ -z "$plugin" ]]; then
  echo "FAIL: libsemline-sampler-typical.so was not installed into <prefix>/.../semline/plugins" >&2
  exit 1
fi
echo "== installed $plugin"

# Symbols of the C++ standard library may be exported as vague linkage; anything else but the
# entry point would mean the plugin's own symbols leak into the process.
exported=$(nm -D --defined-only --demangle "$plugin" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' |
  grep -v -e 'std::' -e '__gnu_cxx::' || true)
if [[ "$exported" != "semline_plugin_entry" ]]; then
  echo "FAIL: the plugin must export only semline_plugin_entry; it exports:" >&2
  echo "$exported" >&2
  exit 1
fi
echo "== exports only semline_plugin_entry"

if [[ -x "$build/bin/semline" ]]; then
  # The installed command finds plugins installed under its own prefix, with no search path set.
  listing=$(env -u SEMLINE_PLUGIN_PATH "$prefix/bin/semline" plugins)
  if ! grep -q "sampler-typical" <<<"$listing" || ! grep -q "typical_p" <<<"$listing" ||
     grep -q "refused: .*sampler-typical" <<<"$listing"; then
    echo "FAIL: '$prefix/bin/semline plugins' does not list the typical sampler:" >&2
    echo "$listing" >&2
    exit 1
  fi
  grep -A3 "typical" <<<"$listing" | sed 's/^/   /'
  echo "== semline plugins lists sampler-typical"

  # Selected by config, from the build tree's semline (not rebuilt), via the plugin path.
  only_example="$work/only-example"
  mkdir -p "$only_example"
  cp "$plugin" "$only_example/"
  text=$(SEMLINE_PLUGIN_PATH="$only_example" "$build/bin/semline" -q run \
    -m "$source_dir/models/gguf/stories260K.gguf" -p "Once upon a time" -n 24 \
    --set 'stages.sampler.chain=["top_k", "typical", "draw"]' --set stages.sampler.typical_p=0.9)
  if [[ "$text" != "Once upon a time"* ]]; then
    echo "FAIL: a run with the typical sampler in the chain produced: $text" >&2
    exit 1
  fi
  echo "   $text"
  echo "== a config selects the typical sampler; semline ran it without a rebuild"
else
  echo "== skipped the 'semline plugins' check: $build/bin/semline is not built"
fi
echo "OK"
