#!/bin/bash
# t_report.sh: `gradc report` and `--budget` from the command line.
#
# For every model in models/: the text report says "arena = lower bound"
# for both modes, has no trailing spaces, and is the same on a second run;
# --json prints one object (checked with python3 when it is installed);
# --sweep-batch prints a header and one row per batch size.  `compile
# --budget` fails with status 1 and the report one byte under the training
# total, and (when compiling works at all) succeeds at exactly the total.
# Packing (tests/models/packbudget.nn, whose training peak is the scratch):
# the scratch shows in the report and the code,
# --no-pack removes it and needs less RAM, and a --budget between the two
# totals compiles without packing instead of failing; --no-pack also drops
# the packed form's stack panels.  With --infer-only the budget is the
# inference RAM, without the parameters when --params bakes them in (flash).
# Environment: GRADC (default build/gradc), ROOT.
set -u
ROOT=${ROOT:-$(pwd)}
GRADC=${GRADC:-$ROOT/build/gradc}
fail=0
bad() { echo "t_report: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for m in "$ROOT"/models/*.nn; do
	name=$(basename "$m" .nn)
	"$GRADC" report "$m" >"$tmp/a.txt" || { bad "$name: report failed"; continue; }
	"$GRADC" report "$m" >"$tmp/b.txt"
	cmp -s "$tmp/a.txt" "$tmp/b.txt" || bad "$name: report not deterministic"
	n=$(grep -c "arena = lower bound" "$tmp/a.txt")
	[ "$n" -eq 2 ] || bad "$name: arena above the lower bound: $(grep -i 'exceeds' "$tmp/a.txt")"
	grep -q '[[:space:]]$' "$tmp/a.txt" && bad "$name: trailing spaces in the report"
	"$GRADC" report "$m" --json >"$tmp/r.json" || bad "$name: report --json failed"
	grep -q '[[:space:]]$' "$tmp/r.json" && bad "$name: trailing spaces in the json"
	command -v python3 >/dev/null 2>&1 || bad "python3 is missing (scripts/deps.sh test installs it)"
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["model", "batch", "dtype", "train", "infer", "buffers"], list(d)
for mode in ("train", "infer"):
    f = d[mode]
    bs = [b for b in d["buffers"] if b["mode"] == mode]
    top = max([b["offset"] + b["bytes"] for b in bs] + [0])
    steps = range(0, max([b["last"] for b in bs] + [0]) + 1)
    peak = max([sum(b["bytes"] for b in bs if b["first"] <= s <= b["last"]) for s in steps] + [0])
    assert f["arena_bytes"] == top == f["lower_bound_bytes"] == peak, (mode, f, top, peak)
    assert f["unshared_bytes"] == sum(b["bytes"] for b in bs)
    # the counts of issue 15 and the feature maps kept for backward
    assert f["params_count"] >= f["trainable_count"] > 0 or f["params_count"] == 0, f
    assert f["macs"] >= 0, f
    assert sum(k["bytes"] for k in f["kept"]) == f["kept_bytes"], (mode, f)
    assert all(any(b["names"] == k["names"] and b["bytes"] == k["bytes"] for b in bs)
               for k in f["kept"]), (mode, f["kept"])
if d["train"]:
    assert d["train"]["macs"] > d["infer"]["macs"] > 0, (d["train"]["macs"], d["infer"]["macs"])
    assert d["train"]["params_count"] == d["infer"]["params_count"]
' "$tmp/r.json" || bad "$name: json does not add up"
	fi
done

"$GRADC" report "$ROOT/models/mlp.nn" --sweep-batch 1,8,32,128 >"$tmp/s.txt" ||
	bad "sweep failed"
[ "$(wc -l <"$tmp/s.txt")" -eq 5 ] || bad "sweep: want a header and 4 rows, got: $(cat "$tmp/s.txt")"

total=$("$GRADC" report "$ROOT/models/mlp.nn" --json | grep -o '"total_bytes": [0-9]*' | head -n 1 |
	grep -o '[0-9]*$')
# the smallest RAM without --fit is the unpacked build's (no stack panels: issue 18)
ntotal=$("$GRADC" report "$ROOT/models/mlp.nn" --no-pack --json | grep -o '"total_bytes": [0-9]*' |
	head -n 1 | grep -o '[0-9]*$')
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/out" --budget $((ntotal - 1)) >"$tmp/o" 2>"$tmp/e"
st=$?
[ "$st" -eq 1 ] || bad "budget one byte short: status $st, want 1"
grep -q "lower bound" "$tmp/e" "$tmp/o" || bad "budget one byte short: no report printed"
[ -e "$tmp/out/mlp.c" ] && bad "budget one byte short: mlp.c written"
if "$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/plain" >/dev/null 2>&1; then
	"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/out" --budget "$total" ||
		bad "budget of exactly $total bytes refused"
else
	echo "t_report: compile does not work yet; skipping the exact-budget case"
fi
# the text report's counts and kept list (models/mlp.nn at batch 32)
"$GRADC" report "$ROOT/models/mlp.nn" >"$tmp/m.txt"
grep -q '^  parameters                 2368         2368$' "$tmp/m.txt" || bad "mlp: no parameter count row"
grep -q '^  multiply-adds            161792        75776$' "$tmp/m.txt" || bad "mlp: no multiply-adds row"
grep -q ' h (line 12) <- dz, matmul#21$' "$tmp/m.txt" || bad "mlp: h not listed as kept for backward"
"$GRADC" report "$ROOT/models/mlp.nn" --batch 1 | grep -q '^  multiply-adds              5056         2368$' ||
	bad "mlp --batch 1: multiply-adds are not per call at the report's batch"

# json_total MODEL FLAGS...: the training total_bytes of the report
json_total() {
	"$GRADC" report "$@" --json | grep -o '"total_bytes": [0-9]*' | head -n 1 | grep -o '[0-9]*$'
}
pb="$ROOT/tests/models/packbudget.nn"
packed=$(json_total "$pb")
small=$(json_total "$pb" --no-pack)
[ -n "$packed" ] && [ -n "$small" ] && [ "$small" -lt "$packed" ] ||
	bad "packbudget: --no-pack total '$small' not below the packed total '$packed'"
"$GRADC" report "$pb" | grep -q "scratch(" || bad "packbudget: no scratch in the report"
"$GRADC" report "$pb" --no-pack | grep -q "scratch(" && bad "packbudget: scratch with --no-pack"
"$GRADC" compile "$pb" -o "$tmp/pk" && grep -q "scratch of" "$tmp/pk/packbudget.c" ||
	bad "packbudget: the default build packs nothing"
"$GRADC" compile "$pb" -o "$tmp/np" --no-pack && ! grep -q "scratch of" "$tmp/np/packbudget.c" ||
	bad "packbudget: --no-pack still packs"
"$GRADC" compile "$pb" -o "$tmp/bp" --budget "$small" && ! grep -q "scratch of" "$tmp/bp/packbudget.c" ||
	bad "packbudget: a budget of the unpacked total ($small) did not compile without packing"
cmp -s "$tmp/np/packbudget.c" "$tmp/bp/packbudget.c" || bad "packbudget: budget fallback differs from --no-pack"
# --no-pack also drops the stack panels of the packed form (models/mlp.nn)
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/mp" && grep -q "pk\[" "$tmp/mp/mlp.c" ||
	bad "mlp: no stack panels in the default build"
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$tmp/mn" --no-pack && ! grep -q "pk\[" "$tmp/mn/mlp.c" ||
	bad "mlp: stack panels with --no-pack"
"$GRADC" compile "$pb" -o "$tmp/b1" --budget $((small - 1)) >/dev/null 2>&1 &&
	bad "packbudget: a budget one byte under the unpacked total compiled"

# --infer-only: the budget is the inference build's RAM (parameters and
# its arena), and parameters baked in with --params live in flash
# (--no-pack: the smallest build --budget falls back to; its stack counts, issue 18)
itotal=$("$GRADC" report "$ROOT/models/mlp.nn" --no-pack --json | grep -o '"total_bytes": [0-9]*' |
	sed -n 2p | grep -o '[0-9]*$')
iarena=$("$GRADC" report "$ROOT/models/mlp.nn" --no-pack --json | grep -o '"arena_bytes": [0-9]*' |
	sed -n 2p | grep -o '[0-9]*$')
# the stack of the entry point is RAM too (issue 18): baked RAM = arena + stack
istack=$("$GRADC" report "$ROOT/models/mlp.nn" --no-pack --json | grep -o '"stack_bytes": [0-9]*' |
	sed -n 2p | grep -o '[0-9]*$')
iarena=$((iarena + istack))
"$GRADC" compile "$ROOT/models/mlp.nn" --infer-only -o "$tmp/i1" --budget $((itotal - 1)) 2>"$tmp/e"
st=$?
[ "$st" -eq 1 ] && grep -q "inference needs $itotal bytes" "$tmp/e" ||
	bad "infer-only budget one byte short: status $st, $(head -1 "$tmp/e")"
[ -e "$tmp/i1/mlp.c" ] && bad "infer-only budget one byte short: mlp.c written"
"$GRADC" compile "$ROOT/models/mlp.nn" --infer-only -o "$tmp/i2" --budget "$itotal" ||
	bad "infer-only budget of exactly $itotal bytes refused"
CC=${CC:-cc}
if $CC -std=c99 -O1 -I"$ROOT/runtime/host" -o "$tmp/mkst" "$ROOT/tests/mkst.c" \
	"$ROOT/runtime/host/gradc_safetensors.c"; then
	"$tmp/mkst" "$tmp/p.st" W1:F32:32,64:rand1 W2:F32:10,32:rand2
	"$GRADC" compile "$ROOT/models/mlp.nn" --infer-only --params "$tmp/p.st" -o "$tmp/i3" \
		--budget "$iarena" || bad "baked parameters counted against the budget ($iarena bytes)"
	"$GRADC" compile "$ROOT/models/mlp.nn" --infer-only --params "$tmp/p.st" -o "$tmp/i4" \
		--budget $((iarena - 1)) 2>/dev/null && bad "baked: a budget under the arena compiled"
else
	bad "cannot build tests/mkst.c"
fi

[ "$fail" -eq 0 ] && echo "t_report: ok"
exit "$fail"
