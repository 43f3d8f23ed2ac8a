#!/bin/sh
# tests/run.sh: run the check executables given as arguments, then every
# tests/t_*.sh script; print one line per test (with its wall-clock
# seconds) and, last, the plain line
# "N passed, N failed".  Exit status 1 if anything failed.
#
# Run from the repository root (`make test` does).  Each test's output goes
# to build/tests/NAME.log and is shown when it fails.  A test executable
# that does not exist (it failed to build) counts as failed.  Scripts run
# with bash from the repository root with GRADC (the compiler), ROOT (the
# repository) and CC set; exit status 0 is a pass.
# Environment: CK_DEFAULT_TIMEOUT (seconds per check test, default 120),
# TEST_TIMEOUT (seconds per executable or script, default 900).

ROOT=$(pwd)
GRADC="$ROOT/build/gradc"
CC=${CC:-cc}
export ROOT GRADC CC
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-120}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
TEST_TIMEOUT=${TEST_TIMEOUT:-900}
LOGDIR="$ROOT/build/tests"
mkdir -p "$LOGDIR"

passed=0
failed=0
failures=""

with_timeout() {
	if command -v timeout >/dev/null 2>&1; then
		timeout "$TEST_TIMEOUT" "$@"
	else
		"$@"
	fi
}

# report NAME STATUS LOG SECONDS: print the result of one test
report() {
	name=$1 status=$2 log=$3 secs=$4
	if [ "$status" -eq 0 ]; then
		passed=$((passed + 1))
		summary=$(grep -E '^[0-9]+%: Checks:' "$log" | tail -n 1)
		echo "PASS  $name  ${secs}s${summary:+  ($summary)}"
	else
		failed=$((failed + 1))
		failures="$failures $name"
		[ "$status" -eq 124 ] && echo "  (timed out after ${TEST_TIMEOUT}s)" >>"$log"
		echo "FAIL  $name (exit $status); last lines of $log:"
		tail -n 60 "$log" | sed 's/^/  | /'
	fi
}

for t in "$@"; do
	name=$(basename "$t")
	log="$LOGDIR/$name.log"
	if [ ! -x "$t" ]; then
		echo "$t was not built (see the build errors above)" >"$log"
		report "$name" 127 "$log" 0
		continue
	fi
	start=$(date +%s)
	with_timeout "$t" >"$log" 2>&1
	report "$name" $? "$log" $(($(date +%s) - start))
done

for s in tests/t_*.sh; do
	[ -e "$s" ] || continue
	name=$(basename "$s" .sh)
	log="$LOGDIR/$name.log"
	start=$(date +%s)
	with_timeout bash "$s" >"$log" 2>&1
	report "$name" $? "$log" $(($(date +%s) - start))
done

[ "$failed" -gt 0 ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
