#!/usr/bin/env bash
# Records the weight-codec known answers the tests compare semline's codecs with
# (tests/model/codec_known_test.cpp): an F32 source of chosen values (scripts/codec_source.py) and
# llama.cpp's conversions of it, made by its own llama-quantize, into models/codec/.
#
#   usage: scripts/record-codec-answers.sh LLAMA_QUANTIZE
#     LLAMA_QUANTIZE  llama.cpp's llama-quantize (e.g. built by a llama.cpp checkout's CMake
#                     build, target llama-quantize); the files in the tree were made by
#                     llama.cpp dc02e1f8
#   then update the sha256 column of models/MANIFEST.md with the lines this prints.
set -euo pipefail
[ $# -eq 1 ] && [ -x "$1" ] || { sed -n "2,10p" "$0"; exit 2; }
quantize=$1
cd "$(dirname "$0")/.."
out=models/codec
mkdir -p "$out"
python3 scripts/codec_source.py "$out/source-f32.gguf"
for type in q8_0 q4_0 f16 bf16; do
  # --pure: every weight matrix in the one type asked for, no per-tensor mixture.
  "$quantize" --pure "$out/source-f32.gguf" "$out/llama-$type.gguf" "$type" 1 >/dev/null 2>"$out/.log" ||
    { cat "$out/.log" >&2; rm -f "$out/.log"; exit 1; }
done
rm -f "$out/.log"
(cd "$out" && sha256sum source-f32.gguf llama-*.gguf && wc -c source-f32.gguf llama-*.gguf | grep -v total)
