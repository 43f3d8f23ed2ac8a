#!/bin/bash
# t_run.sh: `gradc run` and `gradc check` from the command line.
#
# run: OUT's tensors, names, dtypes and shapes for F32/F64/I32/I64 inputs,
# --dtype f64, given and missing parameters; a model file that cannot be
# read (missing, a directory); compile -o creating nested directories, or
# failing under a file; every malformed IN (missing
# input, wrong dtype, wrong shape, label out of range, truncated, garbage,
# empty, batch mismatch, --batch mismatch, bad parameter) and the status
# path of a non-finite objective: exit status 1, a message naming IN, and
# no OUT file.  (The numbers themselves are compared with the reference
# evaluator in test_run.c.)
# check: passes on every model in models/, fails (status 1) on a model
# whose gradient is wrong at its parameters (relu at exactly 0: the
# finite difference sees slope 1/2, the derivative rule 0).
#
# Environment (tests/run.sh sets them): GRADC, ROOT, CC.
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
need_mkst

MLP="$ROOT/models/mlp.nn"
W1="W1:F64:32,64:rand3"
W2="W2:F32:10,32:rand4"

# ---- good runs

# run_ok NAME ARGS...: gradc run must succeed and write OUT
run_ok() {
	local name=$1
	shift
	rm -f "$T/out.st"
	if ! "$GRADC" run "$@" --out "$T/out.st" >"$T/log" 2>&1; then
		fail "$name: exit status $?"
		cat "$T/log"
	elif [ ! -f "$T/out.st" ]; then
		fail "$name: no OUT"
	fi
}

# expect_list NAME WANT: OUT's listing (mkst -l) must be WANT
expect_list() {
	local got
	got=$(mkst -l "$T/out.st" 2>&1)
	if [ "$got" != "$2" ]; then
		fail "$1: OUT holds"
		echo "$got"
		echo "--- expected"
		echo "$2"
	fi
}

mkst "$T/in.st" x:F32:5,64:rand1 y:I32:5:mod10
run_ok "f32 inputs" "$MLP" --in "$T/in.st" --steps 2
expect_list "f32 inputs" "o F32 [5, 10]
objective F32 []
grad.W1 F32 [32, 64]
grad.W2 F32 [10, 32]
W1 F32 [32, 64]
W2 F32 [10, 32]"

mkst "$T/in.st" y:I64:7:mod10 x:F64:7,64:rand2 "$W1" "$W2"
run_ok "f64 inputs, params, --dtype f64" "$MLP" --in "$T/in.st" --dtype f64 --batch 7 --seed 3
expect_list "f64 inputs, params, --dtype f64" "o F64 [7, 10]
objective F64 []
grad.W1 F64 [32, 64]
grad.W2 F64 [10, 32]
W1 F64 [32, 64]
W2 F64 [10, 32]"

# the given parameters come back unchanged after 0 steps, and change after 1
mkst "$T/in.st" y:I64:7:mod10 x:F64:7,64:rand2 "$W1" "$W2"
run_ok "params kept" "$MLP" --in "$T/in.st" --dtype f64
for p in W1 W2; do
	cmp -s <(mkst -p "$T/in.st" $p) <(mkst -p "$T/out.st" $p) || fail "$p changed by 0 steps"
done
run_ok "params stepped" "$MLP" --in "$T/in.st" --dtype f64 --steps 1
cmp -s <(mkst -p "$T/in.st" W1) <(mkst -p "$T/out.st" W1) && fail "W1 unchanged by a step"
# the same seed, the same parameters; another seed, others
mkst "$T/in.st" x:F32:5,64:rand1 y:I32:5:mod10
run_ok "seed 1" "$MLP" --in "$T/in.st" --seed 1
mv "$T/out.st" "$T/s1.st"
run_ok "seed 1 again" "$MLP" --in "$T/in.st" --seed 1
cmp -s "$T/s1.st" "$T/out.st" || fail "seed 1 twice: different OUT"
run_ok "seed 2" "$MLP" --in "$T/in.st" --seed 2
cmp -s <(mkst -p "$T/s1.st" W1) <(mkst -p "$T/out.st" W1) && fail "seeds 1 and 2: same W1"

# every model runs (frozen parameters, several outputs, several inputs)
for m in iris cancer ops; do
	case $m in
	iris) mkst "$T/in.st" x:F32:4,4:rand5 y:I32:4:mod3 ;;
	cancer) mkst "$T/in.st" x:F32:4,30:rand5 t:F32:4,1:rand6 ;;
	ops) mkst "$T/in.st" x:F32:2,4:rand5 m:F32:2,2,3:rand6 y:I64:2:mod3 t:F64:2,3:rand7 ;;
	esac
	run_ok "$m" "$ROOT/models/$m.nn" --in "$T/in.st" --steps 1
done
mkst -l "$T/out.st" | grep -q "^k F32 \[2, 2, 3\]$" || fail "ops: output k [2, 2, 3]"

# ---- errors: status 1, a message naming IN, no OUT

# run_err NAME WANT ARGS...: gradc run must fail with status 1 and WANT in
# its message, and write no OUT
run_err() {
	local name=$1 want=$2
	shift 2
	rm -f "$T/out.st"
	"$GRADC" run "$@" --out "$T/out.st" >"$T/log" 2>&1
	local st=$?
	[ $st -eq 1 ] || fail "$name: exit status $st, expected 1"
	grep -qF -- "$want" "$T/log" || {
		fail "$name: message lacks '$want'"
		cat "$T/log"
	}
	[ -e "$T/out.st" ] && fail "$name: OUT was written"
	ls "$T" | grep -q '\.tmp' && fail "$name: a temporary file was left"
}

IN="$T/in.st"
ERR="gradc: error: $IN: "
mkst "$IN" x:F32:5,64:rand1
run_err "missing input" "${ERR}missing input 'y' (I32 or I64 of shape [B])" "$MLP" --in "$IN"
mkst "$IN" x:I32:5,64:mod3 y:I32:5:mod10
run_err "int for float" "${ERR}input 'x' has dtype I32; expected F32 or F64" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:F32:5:mod10
run_err "float for int" "${ERR}input 'y' has dtype F32; expected I32 or I64" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,63:rand1 y:I32:5:mod10
run_err "wrong shape" "${ERR}input 'x' has shape [5, 63]; expected F32 or F64 [B, 64]" \
	"$MLP" --in "$IN"
mkst "$IN" x:F32:320:rand1 y:I32:5:mod10
run_err "flat input" "${ERR}input 'x' has shape [320]" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I32:5,1:mod10
run_err "label shape" "${ERR}input 'y' has shape [5, 1]; expected I32 or I64 [B]" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I32:5:l=0,1,2,3,10
run_err "label too big" "${ERR}label 'y'[4] = 10 is outside [0, 10)" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I64:5:l=0,1,-1
run_err "negative label" "${ERR}label 'y'[2] = -1 is outside [0, 10)" "$MLP" --in "$IN"
mkst "$IN" x:F32:0,64:rand1 y:I32:0:mod10
run_err "empty batch" "the batch is empty" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I32:4:mod10
run_err "batch mismatch" "${ERR}input 'y' has batch 4, but an earlier input has 5" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I32:5:mod10
run_err "--batch mismatch" "${ERR}the tensors have batch 5, but --batch is 32" \
	"$MLP" --in "$IN" --batch 32
mkst "$IN" x:F32:5,64:rand1 y:I32:5:mod10 W1:F32:64,32:rand1
run_err "param shape" "${ERR}parameter 'W1' has shape [64, 32]; expected [32, 64]" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I32:5:mod10 W2:I64:10,32:mod3
run_err "param dtype" "${ERR}parameter 'W2' has dtype I64; expected F32 or F64" "$MLP" --in "$IN"
mkst "$IN" x:F32:5,64:rand1 y:I32:5:mod10
head -c -7 "$IN" >"$T/trunc.st"
run_err "truncated" "gradc: error: $T/trunc.st: " "$MLP" --in "$T/trunc.st"
head -c 5 "$IN" >"$T/trunc.st"
run_err "truncated header" "gradc: error: $T/trunc.st: " "$MLP" --in "$T/trunc.st"
printf 'this is not a safetensors file at all\n' >"$T/garbage.st"
run_err "garbage" "gradc: error: $T/garbage.st: " "$MLP" --in "$T/garbage.st"
printf '\030\000\000\000\000\000\000\000{"x": {"dtype": "F32"}}' >"$T/garbage.st"
run_err "malformed header" "gradc: error: $T/garbage.st: " "$MLP" --in "$T/garbage.st"
: >"$T/empty.st"
run_err "empty file" "gradc: error: $T/empty.st: " "$MLP" --in "$T/empty.st"
run_err "no file" "gradc: error: cannot open '$T/none.st'" "$MLP" --in "$T/none.st"
# a status of the generated code: cancer's target is infinite, so is the
# squared error
mkst "$IN" x:F32:4,30:rand5 t:F32:4,1:l=0,inf
run_err "non-finite objective" "${ERR}the objective is not finite (status 2 from cancer_grad)" \
	"$ROOT/models/cancer.nn" --in "$IN" --steps 2
# OUT in a directory that does not exist
mkst "$IN" x:F32:5,64:rand1 y:I32:5:mod10
"$GRADC" run "$MLP" --in "$IN" --out "$T/no/such/dir/out.st" >"$T/log" 2>&1
[ $? -eq 1 ] || fail "unwritable OUT: exit status not 1"
grep -q "gradc: error: $T/no/such/dir/out.st" "$T/log" || fail "unwritable OUT: message"
# usage errors: status 2
"$GRADC" run "$MLP" --in "$IN" --steps -1 --out "$T/out.st" >/dev/null 2>&1
[ $? -eq 2 ] || fail "--steps -1: exit status not 2"
# a model that cannot be read: status 1, the path and the system's reason
# (a directory is "Is a directory", not a generic I/O error), nothing written
for cmd in compile report check; do
	for m in "$T/no-such.nn" "$T"; do
		case $m in "$T") why="Is a directory" ;; *) why="No such file or directory" ;; esac
		out=""
		[ $cmd = compile ] && out="-o $T/unread"
		"$GRADC" $cmd "$m" $out >"$T/log" 2>&1
		st=$?
		[ $st -eq 1 ] || fail "$cmd of unreadable $m: exit status $st, expected 1"
		grep -qx "gradc: error: cannot read '$m': $why" "$T/log" ||
			fail "$cmd of unreadable $m: message: $(cat "$T/log")"
		[ ! -e "$T/unread" ] || fail "$cmd of unreadable $m: wrote $T/unread"
	done
done
# compile -o: missing directories are created (mkdir -p); one that cannot
# be (a file in the way) is status 1 and names it
"$GRADC" compile "$MLP" -o "$T/o/p/q" >"$T/log" 2>&1 && [ -f "$T/o/p/q/mlp.c" ] &&
	[ -f "$T/o/p/q/mlp.h" ] || fail "compile -o into new nested directories: $(cat "$T/log")"
: >"$T/file"
"$GRADC" compile "$MLP" -o "$T/file/sub" >"$T/log" 2>&1
st=$?
[ $st -eq 1 ] || fail "compile -o under a file: exit status $st, expected 1"
grep -qx "gradc: error: cannot create '$T/file/sub': Not a directory" "$T/log" ||
	fail "compile -o under a file: message: $(cat "$T/log")"
# no temporary directory is left behind
TMPDIR="$T/tmp"
mkdir "$TMPDIR"
export TMPDIR
mkst "$IN" x:F32:4,30:rand5 t:F32:4,1:l=0,inf
"$GRADC" run "$ROOT/models/cancer.nn" --in "$IN" --out "$T/out.st" >/dev/null 2>&1
mkst "$IN" x:F32:5,64:rand1 y:I32:5:mod10
"$GRADC" run "$MLP" --in "$IN" --out "$T/out.st" >/dev/null 2>&1 || fail "run with TMPDIR"
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary files left in \$TMPDIR: $(ls -A "$TMPDIR")"
unset TMPDIR

# ---- check

for m in "$ROOT"/models/*.nn; do
	if ! "$GRADC" check "$m" >"$T/log" 2>&1; then
		fail "check $(basename "$m"): exit status $?"
		cat "$T/log"
	fi
	grep -q " ok$" "$T/log" || fail "check $(basename "$m"): no parameter checked"
done
cat >"$T/kink.nn" <<'EOF'
# relu at exactly 0: the rule says 0, central differences 1/2
model kink
batch 2
input x[3]
param w[3] ~ zeros
J = sum(relu(w)) + mean(x * w)
minimize J
EOF
"$GRADC" check "$T/kink.nn" >"$T/log" 2>&1
st=$?
[ $st -eq 1 ] || fail "check kink.nn: exit status $st, expected 1"
grep -q "FAIL$" "$T/log" || fail "check kink.nn: no FAIL line"
cat "$T/log"

echo "$fails failures"
[ $fails -eq 0 ]
