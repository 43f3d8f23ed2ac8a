#!/bin/bash
# t_bad.sh: the bad-input corpus.  Every tests/bad/NAME.nn must be rejected
# by `gradc compile` with exit status 1, no output file, and exactly the
# diagnostic in tests/bad/NAME.err on stderr (nothing on stdout).
#
# The .err convention: gradc runs inside tests/bad/ on the bare file name,
# so a .err holds the diagnostic exactly as gradc prints it with the
# directory prefix removed:
#     NAME.nn:LINE:COL: error: MESSAGE
#       the source line
#       ^
# (the path prefix is the only thing that differs from what a user sees).
#
# Usage: bash tests/t_bad.sh [--update]   (from the repository root)
#   --update  rewrites every .err from what gradc prints now: review the
#             diff before committing it.
# Environment: GRADC (default build/gradc).  At least 40 cases must exist.
set -u
ROOT=${ROOT:-$(pwd)}
GRADC=${GRADC:-$ROOT/build/gradc}
case $GRADC in /*) ;; *) GRADC=$ROOT/$GRADC ;; esac
BAD=$ROOT/tests/bad
update=0
[ "${1:-}" = "--update" ] && update=1

if [ ! -x "$GRADC" ]; then
	echo "t_bad: $GRADC is not built"
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$BAD" || exit 1
n=0
fail=0
for nn in *.nn; do
	name=${nn%.nn}
	n=$((n + 1))
	out=$tmp/out.$name
	timeout 20 "$GRADC" compile "$nn" -o "$out" >"$tmp/stdout" 2>"$tmp/stderr"
	rc=$?
	if [ $update = 1 ]; then
		cp "$tmp/stderr" "$name.err"
	fi
	problem=""
	if [ $rc -ne 1 ]; then
		problem="exit status $rc, expected 1"
	elif [ -s "$tmp/stdout" ]; then
		problem="unexpected output on stdout"
	elif [ -d "$out" ] && [ -n "$(find "$out" -type f)" ]; then
		problem="an output file was written: $(find "$out" -type f | head -n 3)"
	elif [ ! -f "$name.err" ]; then
		problem="no $name.err"
	elif ! cmp -s "$tmp/stderr" "$name.err"; then
		problem="diagnostic differs (- expected, + got):
$(diff -u "$name.err" "$tmp/stderr" | tail -n +3)"
	fi
	if [ -n "$problem" ]; then
		fail=$((fail + 1))
		echo "FAIL $nn: $problem"
	fi
done
for err in *.err; do
	[ -f "${err%.err}.nn" ] || { echo "FAIL $err: no ${err%.err}.nn"; fail=$((fail + 1)); }
done
if [ $n -lt 40 ]; then
	echo "FAIL only $n cases (at least 40 expected)"
	fail=$((fail + 1))
fi
echo "t_bad: $n cases, $fail failed"
[ $fail -eq 0 ]
