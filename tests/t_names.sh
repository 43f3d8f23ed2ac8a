#!/bin/bash
# t_names.sh: issue 22's regression cases from the command line.
#   1. aliases keep their names: `o = h; output o`, `output z, h` with
#      h = z, a tracked alias (header macros, infer parameters, stats
#      members, OUT tensors);
#   2. names that collide with gradc's or the C library's (NAME_BATCH,
#      NAME_X_SIZE, NAME_ARENA_BYTES, NAME_H, _W, p, arena, float, NULL,
#      EXIT_SUCCESS, ...) and model names (harness, real, in): the C
#      compiles with -Werror ($CC and clang, the header as C++), `run` writes the
#      user's names exactly; 'objective' beside the objective is an error
#      at the name;
#   3. a model without parameters compiles (-Werror) and runs;
#   4. `run` leaves no temporary directory behind: after a user error, a
#      build failure, and SIGTERM during the build;
#   5. usage errors (status 2): --batch 0, unknown -d letters, an option of
#      another command, run without --in/--out; /dev/zero as a model or as
#      IN is an error (status 1), not out of memory;
#   7. check prints J and the absolute error.
# Environment (tests/run.sh sets them): GRADC, ROOT, CC.
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
need_mkst
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Werror -I$ROOT/runtime"

# expect STATUS MESSAGE CMD...: exit status and the first line of stderr
expect() {
	local want=$1 msg=$2
	shift 2
	"$@" >"$T/o" 2>"$T/e"
	local rc=$?
	[ $rc -eq "$want" ] || fail "$*: status $rc, expected $want ($(head -1 "$T/e"))"
	[ "$(head -1 "$T/e")" = "$msg" ] || fail "$*: got '$(head -1 "$T/e")', expected '$msg'"
}

# compile_strict M.nn NAME [flags]: gradc compile, then gcc -Werror and g++
compile_strict() {
	local m=$1 name=$2
	shift 2
	rm -rf "$T/c"
	"$GRADC" compile "$m" -o "$T/c" "$@" || { fail "$m: compile"; return; }
	$CC $STRICT -c -o "$T/c/x.o" "$T/c/$name.c" 2>"$T/cc" || { fail "$m: -Werror"; cat "$T/cc"; }
	if command -v clang >/dev/null; then
		clang $STRICT -c -o "$T/c/x.o" "$T/c/$name.c" 2>"$T/cc" ||
			{ fail "$m: clang -Werror"; cat "$T/cc"; }
	fi
	if command -v g++ >/dev/null; then
		g++ -std=c++11 -Wall -Werror -I"$ROOT/runtime" -fsyntax-only -x c++ "$T/c/$name.h" \
			2>"$T/cc" || { fail "$m: header as C++"; cat "$T/cc"; }
	fi
}

# ---- 1. aliases
cat >"$T/alias.nn" <<'EOF'
model al
batch 2
input x[3]
param W[4, 3] ~ he
z = W @ x
h = z
o = h
L = sum(tanh(z))
t = L
output o, z, h
track L, t
minimize L
EOF
compile_strict "$T/alias.nn" al
for want in "#define al_O_SIZE 4 /* output 'o'" "#define al_Z_SIZE 4 /* output 'z'" \
	"#define al_H_SIZE 4 /* output 'h'" \
	"int al_infer(const al_params *p, const al_real *x, al_real *o, al_real *z, al_real *h, void *arena);" \
	"	al_real t; /* track t */"; do
	grep -qF "$want" "$T/c/al.h" || fail "alias: al.h lacks '$want'"
done
mkst "$T/in.st" x:F32:2,3:rand1
"$GRADC" run "$T/alias.nn" --in "$T/in.st" --out "$T/out.st" || fail "alias: run"
got=$(mkst -l "$T/out.st" | head -3 | tr '\n' ';')
[ "$got" = "o F32 [2, 4];z F32 [2, 4];h F32 [2, 4];" ] || fail "alias: OUT holds $got"
mkst -l "$T/out.st" >/dev/null

# ---- 2. names that collide with generated ones
for model in harness real in p; do
	cat >"$T/n.nn" <<EOF
model $model
batch 3
input ${model}_BATCH[3]
input _x[2]
input y int
param _W[4, 3] ~ he
param ${model}_X_SIZE[4, 2] ~ he
param arena[4] ~ zeros
float = _W @ ${model}_BATCH + ${model}_X_SIZE @ _x + arena
${model}_H = relu(float)
NULL = ${model}_H
EXIT_SUCCESS = float * 2
L = cross_entropy(float, y)
${model}_ARENA_BYTES = L
gradc_rt = L + 0.01 * sumsq(_W)
output NULL, ${model}_H, EXIT_SUCCESS
track L, ${model}_ARENA_BYTES
minimize gradc_rt with adam(lr = 0.01)
EOF
	compile_strict "$T/n.nn" "$model"
	mkst "$T/in.st" "${model}_BATCH:F32:3,3:rand1" _x:F32:3,2:rand2 y:I32:3:mod4
	rm -f "$T/out.st"
	"$GRADC" run "$T/n.nn" --in "$T/in.st" --out "$T/out.st" --steps 1 2>"$T/e" ||
		{ fail "names ($model): run"; cat "$T/e"; }
	got=$(mkst -l "$T/out.st" | cut -d' ' -f1 | tr '\n' ' ')
	want="NULL ${model}_H EXIT_SUCCESS objective grad._W grad.${model}_X_SIZE grad.arena _W ${model}_X_SIZE arena "
	[ "$got" = "$want" ] || fail "names ($model): OUT holds '$got', expected '$want'"
	"$GRADC" check "$T/n.nn" >"$T/o" || { fail "names ($model): check"; cat "$T/o"; }
done
printf 'model m\ninput x[2]\nparam W[2, 2] ~ he\nobjective = W @ x\nL = sum(objective)\noutput objective\nminimize L\n' >"$T/obj.nn"
mkst "$T/in.st" x:F32:1,2:rand1
rm -f "$T/out.st"
expect 1 "$T/obj.nn:6:8: error: 'gradc run' writes the objective as 'objective': an output cannot have that name" \
	"$GRADC" run "$T/obj.nn" --in "$T/in.st" --out "$T/out.st"
[ -e "$T/out.st" ] && fail "objective output: OUT written"
compile_strict "$T/obj.nn" m
printf 'model m\ninput x[2]\nparam objective[2, 2] ~ he\nL = sum(objective @ x)\nminimize L\n' >"$T/obj2.nn"
expect 1 "$T/obj2.nn:3:7: error: 'gradc run' writes the objective as 'objective': a parameter cannot have that name" \
	"$GRADC" run "$T/obj2.nn" --in "$T/in.st" --out "$T/out.st"

# ---- 3. no parameters
printf 'model pure\nbatch 2\ninput x[3]\ninput t[3]\nz = tanh(x) * t + 1\noutput z\n' >"$T/pure.nn"
compile_strict "$T/pure.nn" pure --infer-only
mkst "$T/in.st" x:F32:2,3:rand1 t:F32:2,3:rand2
"$GRADC" run "$T/pure.nn" --in "$T/in.st" --out "$T/out.st" || fail "no parameters: run"
[ "$(mkst -l "$T/out.st")" = "z F32 [2, 3]" ] || fail "no parameters: OUT $(mkst -l "$T/out.st")"

# ---- 4. values beyond f32 (literals: tests/bad/f32_range*.nn)
printf 'model m\ninput x[4]\nparam W[3, 4] ~ he\nz = W @ x\noutput z\n' >"$T/bp.nn"
mkst "$T/big.st" "W:F64:3,4:v=1e300"
expect 1 "gradc: error: $T/big.st: parameter 'W' holds 1e+300 (element 0), out of range for f32 (--dtype f64 takes it)" \
	"$GRADC" compile "$T/bp.nn" --infer-only --params "$T/big.st" -o "$T/bp"
[ -e "$T/bp/m.c" ] && fail "params beyond f32: m.c written"
"$GRADC" compile "$T/bp.nn" --infer-only --params "$T/big.st" --dtype f64 -o "$T/bp" ||
	fail "params of 1e300 in f64"

# ---- 4. run leaves no temporary directory
mkdir -p "$T/tmp"
mkst "$T/in.st" x:F32:2,3:rand1
TMPDIR=$T/tmp CC=false "$GRADC" run "$T/alias.nn" --in "$T/in.st" --out "$T/out2.st" 2>/dev/null &&
	fail "CC=false: run succeeded"
[ -z "$(ls -A "$T/tmp")" ] || fail "a failed build left $(ls "$T/tmp")"
mkst "$T/bad.st" x:F32:2,3:v=nan
TMPDIR=$T/tmp "$GRADC" run "$T/alias.nn" --in "$T/bad.st" --out "$T/out2.st" 2>/dev/null
[ -z "$(ls -A "$T/tmp")" ] || fail "a failed run left $(ls "$T/tmp")"
TMPDIR=$T/tmp CC="sleep 15; $CC" "$GRADC" run "$T/alias.nn" --in "$T/in.st" --out "$T/out2.st" \
	2>/dev/null &
pid=$!
for _ in $(seq 50); do
	[ -n "$(ls -A "$T/tmp")" ] && break
	sleep 0.2
done
[ -n "$(ls -A "$T/tmp")" ] || fail "SIGTERM: no temporary directory seen"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || fail "SIGTERM: status $rc, expected 143"
[ -z "$(ls -A "$T/tmp")" ] || fail "SIGTERM left $(ls "$T/tmp")"
[ -e "$T/out2.st" ] && fail "SIGTERM: OUT written"

# ---- 5. command line
M=$ROOT/models/mlp.nn
expect 2 "gradc: bad batch '0' (an integer from 1 to 1073741824)" "$GRADC" compile "$M" --batch 0
expect 2 "gradc: bad -d letters 'pz' (p parse, l lower, a autodiff, o optimize, s schedule, m plan)" \
	"$GRADC" report "$M" -d pz
expect 2 "gradc: option '--out' does not belong to 'compile'" "$GRADC" compile "$M" --out x
expect 2 "gradc: option '-o' does not belong to 'run'" "$GRADC" run "$M" -o x --in a --out b
expect 2 "gradc: option '--json' does not belong to 'check'" "$GRADC" check "$M" --json
expect 2 "gradc: 'run' needs --in IN.safetensors and --out OUT.safetensors" "$GRADC" run "$M" --in x
expect 2 "gradc: 'run' needs --in IN.safetensors and --out OUT.safetensors" "$GRADC" run "$M"
expect 2 "gradc: unknown command 'frobnicate'" "$GRADC" frobnicate "$M"
expect 2 "gradc: --name 'gradc_x' starts with 'gradc' (the prefix of gradc's runtime: gradc_rt.h, gradc_*, GRADC_*)" \
	"$GRADC" compile "$M" --name gradc_x
expect 1 "gradc: error: cannot read '/dev/zero': larger than 16 MiB" "$GRADC" compile /dev/zero
expect 1 "gradc: error: /dev/zero: malformed safetensors header at byte 8: expected '{'" \
	"$GRADC" run "$M" --in /dev/zero --out "$T/out3.st"
grep -q "error" "$T/e" || fail "/dev/zero as IN: no message"
[ -e "$T/out3.st" ] && fail "/dev/zero as IN: OUT written"

# ---- 7. check's measure
"$GRADC" check "$T/alias.nn" >"$T/o" || { fail "check alias.nn"; cat "$T/o"; }
grep -q "error ||g_fd - g|| / max(||g||, ||g_fd||, 1e-6 (1 + |J|)), abs ||g_fd - g||" "$T/o" ||
	fail "check: no measure line"
grep -qE "^  W +12 of 12 +elements +error [0-9.e+-]+  abs [0-9.e+-]+  ok$" "$T/o" ||
	{ fail "check: no absolute error"; cat "$T/o"; }

echo "t_names: $fails failed"
[ $fails -eq 0 ]
