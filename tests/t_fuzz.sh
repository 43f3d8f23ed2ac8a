#!/bin/bash
# t_fuzz.sh: a bounded run (60 s) of the front-end fuzzer, seeded from
# models/ and tests/bad/; any crash, sanitizer report, leak or timeout fails.
# Longer runs: `make fuzz FUZZ_TIME=3600` (see fuzz.mk).
set -eu
cd "$ROOT"
make -s fuzz-smoke > build/tests/fuzz-smoke.log 2>&1 || { tail -40 build/tests/fuzz-smoke.log; exit 1; }
grep -E "stat::number_of_executed_units|Done" build/tests/fuzz-smoke.log | head -2
