#!/usr/bin/env bash
# `npm test`: set up (apt, npm, build), then every vitest file (unit, BPF,
# end-to-end; one file at a time), the tsd type tests and a type-check of the tests, then one
# summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
mkdir -p build
npx vitest run --reporter=default --reporter=json --outputFile=build/vitest.json
vitest_rc=$?
npx tsd && echo "tsd: type tests passed"
tsd_rc=$?
# The tests themselves type-check too (vitest strips types without checking them).
npx tsc -p tsconfig.test.json && echo "tsc: the tests type-check"
tsc_rc=$?
node scripts/summary.mjs build/vitest.json "$tsd_rc" "$tsc_rc"
exit $(( vitest_rc != 0 || tsd_rc != 0 || tsc_rc != 0 ))
