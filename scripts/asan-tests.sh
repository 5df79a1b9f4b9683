#!/usr/bin/env bash
# Builds everything (core, plugins, CLI, tests) with AddressSanitizer + UndefinedBehaviorSanitizer
# (the `asan` preset, into build-asan) and runs the whole test suite under it. Fails on a failing
# test and on any sanitizer report, leaks included, even one from a process whose exit status a
# test expected to be non-zero (the semline CLI the tests spawn): reports are written to files
# and any file at all fails the run.
#   scripts/asan-tests.sh             configure, build, run the suite
#   JOBS=N scripts/asan-tests.sh      build and test with N jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
build=build-asan
start=$(date +%s)
stage() { echo "== $* ($(( $(date +%s) - start )) s)"; }

stage "configure and build ($build)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs"

reports=$PWD/$build/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# ASan and LeakSanitizer reports go to files; UBSan ignores log_path, so it aborts instead, which
# no test mistakes for an expected exit status. intercept_tls_get_addr=0: the CPU plugin has a
# thread_local and is dlopen'd; with glibc 2.36 the runtime records a bogus range for that dynamic
# TLS block and LeakSanitizer's tracer faults on it ("Tracer caught signal 11"). Dynamic TLS blocks
# are heap blocks reachable from the thread's static TLS, so leak checking still sees through them.
#
# Mesa's llvmpipe (the Vulkan device the suite runs on) detects the CPU once per process and, on
# AMD Zen CPUs, keeps a realloc'd array of L3-cache affinity masks in a global it never frees. The
# Vulkan loader unloads the driver when the last instance goes; with its globals unmapped,
# LeakSanitizer would count that array (128 bytes per L3 cache, from an "unknown module") as a leak
# in every process that touched Vulkan. Preloading the driver keeps it mapped and its globals roots:
# the array stays reachable, and leaks of ours are still reported. verify_asan_link_order=0 lets a
# library come before the ASan runtime in the load order (symbols still resolve to the runtime).
lvp=$(sed -n 's/.*"library_path": *"\([^"]*libvulkan_lvp[^"]*\)".*/\1/p' /usr/share/vulkan/icd.d/*.json 2>/dev/null | head -1 || true)
held=""
if [ -n "$lvp" ] && [ -f "$lvp" ]; then
  export LD_PRELOAD="$lvp"
  held=":verify_asan_link_order=0"
fi
export ASAN_OPTIONS="detect_leaks=1:log_path=$reports/asan:abort_on_error=1:strict_init_order=1:detect_stack_use_after_return=1:intercept_tls_get_addr=0$held"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"

stage "test suite under the sanitizers"
status=0
# Not the test preset: its environment (the same options without log_path, for a developer's
# `ctest --preset asan`) would replace the one set here.
scripts/ctest-all.sh "$build" --output-on-failure --timeout 600 -j"$jobs" || status=$?

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
  for f in $found; do
    echo "---- $f"
    cat "$f"
  done
  echo "asan-tests: $(echo "$found" | wc -l) sanitizer report(s), see above" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "asan-tests: the test suite failed under the sanitizers (ctest exit $status)" >&2
  exit "$status"
fi
stage "done: no sanitizer report"
