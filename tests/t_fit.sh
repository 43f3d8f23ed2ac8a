# t_fit.sh: `--budget BYTES --fit` (issue 18): recomputation in the backward
# pass on a chain (tests/models/fitchain.nn) and on a DAG with residuals
# (fitres.nn), the trade-off curve, the exact minimum and one byte under
# it, the fitted build bit-identical to the plain one (gradc run), gradc
# check on it, and the worst-case stack against GCC's -fstack-usage.
. "$ROOT/tests/lib.sh"
need_mkst
mkst "$T/in.st" x:F32:8,16:rand3 y:I32:8:mod4

# ram_of MODEL BUDGET: the training total_bytes report prints for the fitted build
ram_of() {
	"$GRADC" report "$1" --budget "$2" --fit --json | grep -o '"total_bytes": [0-9]*' | head -n 1 |
		grep -o '[0-9]*$'
}

for m in fitchain fitres; do
	M="$ROOT/tests/models/$m.nn"
	"$GRADC" report "$M" --sweep-budget "$T/$m.svg" >"$T/$m.sweep" || fail "$m: sweep failed"
	grep -q "<polyline" "$T/$m.svg" &&
		python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$T/$m.svg" ||
		fail "$m: no curve in the SVG, or not XML"
	rows=$(grep -cE '^ +[0-9]+ +[0-9]+' "$T/$m.sweep")
	[ "$rows" -ge 3 ] || fail "$m: want at least 3 points on the curve, got $(cat "$T/$m.sweep")"
	plain=$(grep -E '^ +[0-9]+ +[0-9]+' "$T/$m.sweep" | head -n 1 | awk '{print $1}')
	min=$(grep -E '^ +[0-9]+ +[0-9]+' "$T/$m.sweep" | tail -n 1 | awk '{print $1}')
	mid=$(grep -E '^ +[0-9]+ +[0-9]+' "$T/$m.sweep" | sed -n 2p | awk '{print $1}')
	[ "$min" -lt "$plain" ] || fail "$m: smallest RAM $min not below the plain $plain"

	"$GRADC" run "$M" --in "$T/in.st" --out "$T/plain.st" --steps 3 || fail "$m: plain run"
	budgets="$min"
	[ "$m" = fitchain ] && budgets="$mid $min"  # (the machine is shared: runs cost)
	for b in $budgets; do
		"$GRADC" run "$M" --in "$T/in.st" --out "$T/fit.st" --steps 3 --budget "$b" --fit ||
			fail "$m: fitted run at $b"
		cmp -s "$T/plain.st" "$T/fit.st" || fail "$m: fitted run at $b differs from the plain run"
		total=$(ram_of "$M" "$b")
		[ -n "$total" ] && [ "$total" -le "$b" ] || fail "$m: report total '$total' over the budget $b"
		"$GRADC" report "$M" --budget "$b" --fit >"$T/r.txt" || fail "$m: report at $b"
		grep -q "recomputed" "$T/r.txt" && grep -q "extra multiply-adds" "$T/r.txt" &&
			grep -q "timeline" "$T/r.txt" || fail "$m: report at $b shows no plan or timeline"
	done
	# check builds in f64: its smallest RAM is the f64 curve's
	"$GRADC" report "$M" --dtype f64 --sweep-budget "$T/d.svg" >"$T/d.sweep" || fail "$m: f64 sweep"
	min64=$(grep -E '^ +[0-9]+ +[0-9]+' "$T/d.sweep" | tail -n 1 | awk '{print $1}')
	"$GRADC" check "$M" --budget "$min64" --fit >"$T/c.txt" 2>&1 ||
		fail "$m: check at $min64: $(cat "$T/c.txt")"

	"$GRADC" compile "$M" -o "$T/p" || fail "$m: plain compile"
	"$GRADC" compile "$M" -o "$T/f" --budget "$min" --fit || fail "$m: compile at the minimum $min"
	grep -q "(recomputed for the backward pass of " "$T/f/$m.c" ||
		fail "$m: no recomputed kernel in the generated code"
	"$GRADC" compile "$M" -o "$T/g" --budget "$plain" --fit || fail "$m: compile at the plain RAM"
	cmp -s "$T/p/$m.c" "$T/g/$m.c" || fail "$m: --fit changed a build that fits as it is"
	cc -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$ROOT/runtime" -c -o "$T/f.o" "$T/f/$m.c" ||
		fail "$m: the fitted C does not compile cleanly"

	# one byte under the smallest RAM reachable: status 1, nothing written
	"$GRADC" compile "$M" -o "$T/u" --budget $((min - 1)) --fit 2>"$T/e"
	st=$?
	[ "$st" -eq 1 ] || fail "$m: budget $((min - 1)): status $st, want 1"
	grep -q "^gradc: error: no plan fits the training RAM budget of $((min - 1)) bytes: the smallest training RAM reachable is $min bytes (recompute " "$T/e" ||
		fail "$m: budget one byte under: message $(cat "$T/e")"
	[ -e "$T/u/$m.c" ] && fail "$m: budget one byte under: $m.c written"
	"$GRADC" run "$M" --in "$T/in.st" --out "$T/x.st" --budget $((min - 1)) --fit 2>/dev/null &&
		fail "$m: run at one byte under the minimum succeeded"
	[ -e "$T/x.st" ] && fail "$m: run under the minimum wrote OUT"
done

# micro-batches (tests/models/fitmicro.nn, f64): below what recomputation
# reaches, micro-batches alone (no node recomputed), then both; the same
# math as the plain build (relative error of every tensor <= 1e-12; f32:
# <= 1e-5, float reassociation)
M="$ROOT/tests/models/fitmicro.nn"
mkst "$T/in64.st" x:F64:64,64:rand5 y:I32:64:mod4
mkst "$T/in32.st" x:F32:64,64:rand5 y:I32:64:mod4
# close A B TOL: every tensor of A and B within TOL (norm-relative)
close() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    d, out = b[8 + n:], {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        f = {"F64": "d", "F32": "f", "I32": "i", "I64": "q"}[v["dtype"]]
        out[k] = struct.unpack("<%d%s" % ((e - s) // struct.calcsize(f), f), d[s:e])
    return out
a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
for k in a:
    num = math.sqrt(sum((x - y) ** 2 for x, y in zip(a[k], b[k])))
    den = math.sqrt(sum(x * x for x in a[k]))
    assert num <= tol * max(den, 1e-300), (k, num / max(den, 1e-300))
PY
}
"$GRADC" report "$M" --dtype f64 --sweep-budget "$T/m.svg" >"$T/m.sweep" || fail "fitmicro: sweep"
only=$(grep -E '^ +[0-9]+ +0 .* 0 nodes recomputed, [0-9]+ micro-batches' "$T/m.sweep" | head -n 1 |
	awk '{print $1}')
both=$(grep -E '^ +[0-9]+ +[1-9][0-9]* .* [1-9][0-9]* nodes recomputed, [0-9]+ micro-batches' \
	"$T/m.sweep" | tail -n 1 | awk '{print $1}')
min=$(grep -E '^ +[0-9]+ +[0-9]+' "$T/m.sweep" | tail -n 1 | awk '{print $1}')
[ -n "$only" ] && [ -n "$both" ] && [ "$both" = "$min" ] ||
	fail "fitmicro: want a micro-batch-only row and a last row with both: $(cat "$T/m.sweep")"
"$GRADC" run "$M" --dtype f64 --in "$T/in64.st" --out "$T/mp.st" --steps 3 || fail "fitmicro: plain run"
"$GRADC" run "$M" --in "$T/in32.st" --out "$T/mp32.st" --steps 3 || fail "fitmicro: plain f32 run"
for b in "$only" "$both"; do
	"$GRADC" report "$M" --dtype f64 --budget "$b" --fit >"$T/r.txt" || fail "fitmicro: report at $b"
	grep -q "micro-batches: [0-9]* of [0-9]* sample" "$T/r.txt" || fail "fitmicro: no micro-batches at $b"
	total=$("$GRADC" report "$M" --dtype f64 --budget "$b" --fit --json |
		grep -o '"total_bytes": [0-9]*' | head -n 1 | grep -o '[0-9]*$')
	[ -n "$total" ] && [ "$total" -le "$b" ] || fail "fitmicro: report total '$total' over $b"
	"$GRADC" run "$M" --dtype f64 --in "$T/in64.st" --out "$T/mf.st" --steps 3 --budget "$b" --fit ||
		fail "fitmicro: fitted run at $b"
	close "$T/mp.st" "$T/mf.st" 1e-12 || fail "fitmicro: fitted run at $b is not the plain math"
done
"$GRADC" check "$M" --budget "$both" --fit >"$T/c.txt" 2>&1 || fail "fitmicro: check at $both: $(cat "$T/c.txt")"
"$GRADC" compile "$M" --dtype f64 -o "$T/mc" --budget "$both" --fit || fail "fitmicro: compile at $both"
grep -q "fitmicro_micro_step_(p, x + mb \* " "$T/mc/fitmicro.c" ||
	fail "fitmicro: no loop over the micro-batches in the generated code"
$CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Werror -I"$ROOT/runtime" -c \
	-o "$T/mc.o" "$T/mc/fitmicro.c" || fail "fitmicro: $CC rejects the code at $both"
# a bad label in the last micro-batch, or a NaN there: the status, and the
# parameters and the state exactly as they were (the update runs after the loop)
cat >"$T/mc/st.c" <<'C'
#include <stdio.h>
#include <string.h>
#include "fitmicro.h"
static fitmicro_params p, p0;
static fitmicro_state s, s0;
int main(void)
{
	double x[fitmicro_BATCH * fitmicro_X_SIZE];
	int32_t y[fitmicro_BATCH];
	fitmicro_stats st;
	for (int i = 0; i < fitmicro_BATCH * fitmicro_X_SIZE; i++)
		x[i] = (i % 7) * 0.1 - 0.3;
	for (int i = 0; i < fitmicro_BATCH; i++)
		y[i] = i % 4;
	fitmicro_init(&p, &s, 1);
	if (fitmicro_train_step(&p, &s, x, y, &st, NULL) != GRADC_OK || s.step != 1)
		return 1;
	p0 = p, s0 = s;
	y[fitmicro_BATCH - 1] = 9;
	if (fitmicro_train_step(&p, &s, x, y, &st, NULL) != GRADC_EBADLABEL)
		return 2;
	y[fitmicro_BATCH - 1] = 1;
	x[fitmicro_BATCH * fitmicro_X_SIZE - 1] = 0.0 / 0.0;
	if (fitmicro_train_step(&p, &s, x, y, &st, NULL) != GRADC_ENONFINITE || st.objective == st.objective)
		return 3;
	return memcmp(&p, &p0, sizeof p) || memcmp(&s, &s0, sizeof s) ? 4 : 0;
}
C
$CC -std=c99 -O1 -I"$T/mc" -I"$ROOT/runtime" -o "$T/mc/st" "$T/mc/st.c" "$T/mc/fitmicro.c" \
	"$ROOT/runtime/gradc_rt.c" -lm && "$T/mc/st" || fail "fitmicro: status and unchanged parameters ($?)"

# f32: the smallest budget of the f32 curve, within float reassociation
"$GRADC" report "$M" --sweep-budget "$T/m32.svg" >"$T/m32.sweep" || fail "fitmicro: f32 sweep"
min32=$(grep -E '^ +[0-9]+ +[0-9]+' "$T/m32.sweep" | tail -n 1 | awk '{print $1}')
"$GRADC" run "$M" --in "$T/in32.st" --out "$T/mf32.st" --steps 3 --budget "$min32" --fit ||
	fail "fitmicro: f32 fitted run"
close "$T/mp32.st" "$T/mf32.st" 1e-5 || fail "fitmicro: f32 fitted run too far from the plain run"
"$GRADC" compile "$M" -o "$T/mu" --budget $((min32 - 1)) --fit 2>"$T/e"
[ $? -eq 1 ] && grep -q "^gradc: error: no plan fits the training RAM budget of $((min32 - 1)) bytes: the smallest training RAM reachable is $min32 bytes (recompute .* micro-batches" "$T/e" ||
	fail "fitmicro: one byte under: $(cat "$T/e")"
# the stack of the micro-batched step counts its callee: at least GCC's two frames
"$GRADC" compile "$M" -o "$T/ms" --budget "$min32" --fit || fail "fitmicro: compile at $min32"
(cd "$T/ms" && gcc -std=c99 -O2 -fstack-usage -I"$ROOT/runtime" -c fitmicro.c -o fitmicro.o) ||
	fail "fitmicro: gcc -fstack-usage"
su=$(awk '$1 ~ /:fitmicro_(train_step|micro_step_)$/ { s += $2 } END { print s }' "$T/ms/fitmicro.su")
st=$("$GRADC" report "$M" --budget "$min32" --fit --json | grep -o '"stack_bytes": [0-9]*' | head -n 1 |
	grep -o '[0-9]*$')
[ -n "$su" ] && [ "$su" -gt 0 ] && [ "$st" -ge "$su" ] && [ "$st" -le $((su + 1536)) ] ||
	fail "fitmicro: stack $st vs -fstack-usage train_step + micro_step_ $su"

# a CNN (models/cnn.nn): its convolutions recomputed, bit for bit the plain run
M="$ROOT/models/cnn.nn"
mkst "$T/cin.st" x:F32:32,1,8,8:rand7 y:I32:32:mod10
"$GRADC" report "$M" --sweep-budget "$T/c.svg" >"$T/c.sweep" || fail "cnn: sweep"
cb=$(grep -E '^ +[0-9]+ +[0-9]+ .* recomputed' "$T/c.sweep" | grep -v micro | tail -n 1 | awk '{print $1}')
[ -n "$cb" ] || fail "cnn: no recomputation on the curve: $(cat "$T/c.sweep")"
"$GRADC" run "$M" --in "$T/cin.st" --out "$T/cp.st" --steps 2 || fail "cnn: plain run"
"$GRADC" run "$M" --in "$T/cin.st" --out "$T/cf.st" --steps 2 --budget "$cb" --fit ||
	fail "cnn: fitted run at $cb"
cmp -s "$T/cp.st" "$T/cf.st" || fail "cnn: the fitted run at $cb differs from the plain run"

# usage
"$GRADC" compile "$ROOT/models/mlp.nn" --fit -o "$T/z" 2>/dev/null
[ $? -eq 2 ] || fail "--fit without --budget: want status 2"
"$GRADC" compile "$ROOT/models/mlp.nn" --infer-only --budget 1M --fit -o "$T/z" 2>/dev/null
[ $? -eq 2 ] || fail "--fit with --infer-only: want status 2"
"$GRADC" report "$ROOT/models/mlp.nn" --sweep-budget 2>/dev/null
[ $? -eq 2 ] || fail "--sweep-budget without a file: want status 2"

# no minimize: no training RAM to fit or sweep
printf 'model inf\ninput x[4]\nparam W[2, 4] ~ he\no = W @ x\noutput o\n' >"$T/inf.nn"
"$GRADC" report "$T/inf.nn" --sweep-budget "$T/i.svg" 2>"$T/e"
[ $? -eq 1 ] && grep -q "no 'minimize' statement: no training RAM to sweep" "$T/e" &&
	[ ! -e "$T/i.svg" ] || fail "sweep without minimize: $(cat "$T/e")"
"$GRADC" compile "$T/inf.nn" -o "$T/i" --budget 1K --fit 2>"$T/e"
[ $? -eq 1 ] && grep -q "no 'minimize' statement" "$T/e" || fail "--fit without minimize: $(cat "$T/e")"
# without --fit, run and check refuse a budget the build exceeds
"$GRADC" run "$ROOT/tests/models/fitchain.nn" --in "$T/in.st" --out "$T/o.st" --budget 1K 2>"$T/e"
[ $? -eq 1 ] && grep -q "^gradc: error: training needs [0-9]* bytes of RAM, over the budget of 1024 (--fit may find a way)" "$T/e" &&
	[ ! -e "$T/o.st" ] || fail "run over the budget without --fit: $(cat "$T/e")"

# the stack report's figures bound GCC's own (-O2), within 1 KiB, for each
# register shape of the portable file (GRADC_KERNELS 1, 2, 3)
"$GRADC" compile "$ROOT/models/mlp.nn" -o "$T/s" || fail "mlp compile"
"$GRADC" report "$ROOT/models/mlp.nn" >"$T/sr.txt" || fail "mlp report"
grep -q "^worst-case stack: mlp_infer [0-9]*, mlp_train_step [0-9]*, mlp_grad [0-9]* bytes" "$T/sr.txt" ||
	fail "report: no worst-case stack line"
# ours ENTRY SHAPE: the report's figure of mlp_ENTRY for that shape
ours() {
	sed -n 's/^  by kernel shape (GRADC_KERNELS 1 \/ 2 \/ 3): //p' "$T/sr.txt" | tr ',' '\n' |
		awk -v e="mlp_$1" -v k="$2" '$1 == e { print $(1 + 2 * k - 1) }'
}
# su_check WHAT SHAPE CC FLAGS...
su_check() {
	what=$1 shape=$2
	shift 2
	(cd "$T/s" && "$@" -std=c99 -O2 -fstack-usage -DGRADC_KERNELS="$shape" -I"$ROOT/runtime" \
		-c mlp.c -o mlp.o) || { fail "$what: cannot compile"; return; }
	for e in infer train_step grad; do
		su=$(awk -v e="mlp_$e" '{ n = split($1, a, ":") } a[n] == e { print $2 }' "$T/s/mlp.su")
		st=$(ours "$e" "$shape")
		[ -n "$su" ] && [ -n "$st" ] && [ "$st" -ge "$su" ] && [ "$st" -le $((su + 1024)) ] ||
			fail "$what, shape $shape: mlp_$e stack '$st' vs -fstack-usage '$su'"
	done
}
for k in 1 2 3; do
	su_check gcc "$k" gcc
done
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
	su_check arm-none-eabi-gcc 1 arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 \
		-mfloat-abi=hard --specs=picolibc.specs
fi
[ "$fails" -eq 0 ]
