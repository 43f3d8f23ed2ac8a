#!/bin/sh
# tests/run.sh: run the check executables given as arguments and every
# tests/t_*.sh script, TEST_JOBS at a time (default: the number of cores);
# print one line per test as it ends (with its wall-clock seconds), then the
# last lines of every failed test's log and, last, the plain line
# "N passed, N failed".  Exit status 1 if anything failed.
#
# Run from the repository root (`make test` does).  Each test's output goes
# to build/tests/NAME.log, its exit status to build/tests/NAME.rc.  A test
# executable that does not exist (it failed to build) counts as failed.
# Scripts run with bash from the repository root with GRADC (the compiler),
# ROOT (the repository) and CC set; exit status 0 is a pass.  The tests keep
# their scratch files apart (mktemp, or a directory of build/ of their own),
# so they may run side by side.
# Environment: CK_DEFAULT_TIMEOUT (seconds per check test, default 120),
# TEST_TIMEOUT (seconds per executable or script, default 900), TEST_JOBS.
#
# `sh tests/run.sh --one TEST` runs one test (the workers of the above).

ROOT=$(pwd)
GRADC="$ROOT/build/gradc"
CC=${CC:-cc}
export ROOT GRADC CC
export CK_DEFAULT_TIMEOUT="${CK_DEFAULT_TIMEOUT:-120}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export TEST_TIMEOUT=${TEST_TIMEOUT:-900}
LOGDIR="$ROOT/build/tests"
mkdir -p "$LOGDIR"

# name TEST: the test's name (the script's without .sh)
name() { basename "$1" .sh; }

if [ "${1:-}" = --one ]; then
	t=$2 n=$(name "$2")
	log="$LOGDIR/$n.log"
	start=$(date +%s)
	case $t in
	*.sh) timeout "$TEST_TIMEOUT" bash "$t" >"$log" 2>&1 ;;
	*) if [ -x "$t" ]; then
		timeout "$TEST_TIMEOUT" "$t" >"$log" 2>&1
	else
		echo "$t was not built (see the build errors above)" >"$log"
		false
	fi ;;
	esac
	status=$?
	secs=$(($(date +%s) - start))
	[ "$status" -eq 124 ] && echo "  (timed out after ${TEST_TIMEOUT}s)" >>"$log"
	echo "$status" >"$LOGDIR/$n.rc"
	if [ "$status" -eq 0 ]; then
		summary=$(grep -E '^[0-9]+%: Checks:' "$log" | tail -n 1)
		echo "PASS  $n  ${secs}s${summary:+  ($summary)}"
	else
		echo "FAIL  $n (exit $status)  ${secs}s"
	fi
	exit 0
fi

# the longest first, so that the last to end is a short one
tests=""
for s in tests/t_generated_conv.sh tests/t_generated.sh tests/t_embedded.sh tests/t_golden.sh tests/t_demo.sh; do
	[ -e "$s" ] && tests="$tests $s"
done
for s in "$@" tests/t_*.sh; do
	case " $tests " in *" $s "*) ;; *) [ -e "$s" ] || [ "${s%.sh}" = "$s" ] && tests="$tests $s" ;; esac
done
for s in $tests; do rm -f "$LOGDIR/$(name "$s").rc"; done

jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
for s in $tests; do printf '%s\n' "$s"; done | xargs -d "\n" -P "$jobs" -n 1 sh tests/run.sh --one

passed=0 failed=0 failures=""
for s in $tests; do
	n=$(name "$s")
	if [ "$(cat "$LOGDIR/$n.rc" 2>/dev/null)" = 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures="$failures $n"
		echo "FAIL  $n; last lines of $LOGDIR/$n.log:"
		tail -n 60 "$LOGDIR/$n.log" | sed 's/^/  | /'
	fi
done
[ "$failed" -gt 0 ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
