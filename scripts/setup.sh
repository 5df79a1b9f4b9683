#!/usr/bin/env bash
# Installs what semline needs from Debian (when missing) and builds it into ./build.
#   scripts/setup.sh            install dependencies, configure, build
#   BUILD_DIR=out scripts/setup.sh   build elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libboost1.81-dev libtomlplusplus-dev libspdlog-dev
          catch2 libcli11-dev nlohmann-json3-dev libvulkan-dev glslc mesa-vulkan-drivers gnuplot-nox clang
          libclang-rt-14-dev libcpp-httplib-dev prometheus-cpp-dev libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The server's tests talk to it with OpenAI's own client, from npm (where npm is).
if command -v npm >/dev/null; then
  npm ci --prefix tests/serve --no-audit --no-fund --silent
fi

build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
