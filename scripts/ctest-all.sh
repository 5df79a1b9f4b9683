#!/usr/bin/env bash
# Runs every registered test of a build tree and fails unless every one of them ran: ctest says
# "100% tests passed" over skipped tests, and over none at all when a test binary was never built.
#   scripts/ctest-all.sh BUILD_DIR [CTEST_ARGS...]
# Prints how many tests were registered, ran and were skipped; fails on a failing test, on no tests,
# and on fewer tests run than registered (a skip: SEMLINE_REQUIRE turns the expected ones into
# failures with their reason, see tests/common/require.h).
set -euo pipefail
if [[ $# -lt 1 || ! -f "$1/CTestTestfile.cmake" ]]; then
  echo "usage: $0 BUILD_DIR [CTEST_ARGS...]   (a configured and built semline build tree)" >&2
  exit 2
fi
build=$1
shift
registered=$(ctest --test-dir "$build" -N | sed -n 's/^Total Tests: *//p')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
ctest --test-dir "$build" --no-tests=error "$@" 2>&1 | tee "$log" || status=$?
[ "$status" -eq 0 ] || exit "$status"
total=$(sed -n 's/.*tests passed, [0-9]* tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
skipped=$(grep -c '(Skipped)$' "$log" || true)
ran=$(( ${total:-0} - skipped ))
echo "ctest-all: ${registered:-0} tests registered, $ran ran, $skipped skipped"
if [[ -z "$registered" || "$registered" -eq 0 ]]; then
  echo "ctest-all: no tests are registered in $build" >&2
  exit 1
fi
if [ "$ran" -lt "$registered" ]; then
  echo "ctest-all: $(( registered - ran )) of the $registered registered tests did not run (see 'The following tests did not run' above)" >&2
  exit 1
fi
