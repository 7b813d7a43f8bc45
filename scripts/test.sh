#!/usr/bin/env bash
# `npm test`: set up (apt, npm, build), then every vitest file (unit, BPF,
# end-to-end; one file at a time) and the tsd type tests, then one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
mkdir -p build
npx vitest run --reporter=default --reporter=json --outputFile=build/vitest.json
vitest_rc=$?
npx tsd && echo "tsd: type tests passed"
tsd_rc=$?
node scripts/summary.mjs build/vitest.json "$tsd_rc"
exit $(( vitest_rc != 0 || tsd_rc != 0 ))
