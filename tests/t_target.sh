#!/bin/bash
# t_target.sh: --target picks a row of target.c's table.  Every row's output
# compiles -Werror; a row with the portable shape emits the same kernels
# (only the banner's regenerate line names the target); an unknown target
# is a usage error that lists the known ones.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "t_target: $*"; exit 1; }

"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/p"
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/v4" --target x86-64-v4
grep -q 'Regenerate: gradc compile .* --target x86-64-v4' "$tmp/v4/mlp.c" ||
	fail "the banner does not name the target"
diff <(grep -v Regenerate "$tmp/p/mlp.c") <(grep -v Regenerate "$tmp/v4/mlp.c") >/dev/null ||
	fail "x86-64-v4 (the portable shape) emits other kernels"
${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$ROOT/runtime" -c "$tmp/v4/mlp.c" -o "$tmp/v4.o" ||
	fail "the x86-64-v4 output does not compile"

set +e
out=$("$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/x" --target vax 2>&1); st=$?
set -e
[ $st -eq 2 ] || fail "unknown target: status $st, expected 2"
echo "$out" | grep -q "unknown target 'vax' (known: portable, x86-64-v4" || fail "message: $out"
[ ! -e "$tmp/x" ] || fail "an unknown target wrote output"
"$GRADC" report "$ROOT/models/mlp.nn" --target x86-64-v4 | grep -q "arena alignment 64 bytes" ||
	fail "report does not state the target's alignment"
echo "t_target: ok"
