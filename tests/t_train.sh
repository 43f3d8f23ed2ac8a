#!/bin/bash
# t_train.sh: `gradc train` and `gradc eval` from the command line.
#
# Trains the seed network on data/digits.csv and models/iris.nn on
# data/iris.csv and asks for the demo's accuracy (digits: 0.95 on a
# fifth split off with the seed; iris: 0.9); eval on the same data agrees.
# Data: .npy (f32, f64, i32, i64), safetensors and CSV (with and without a
# header, CRLF, a named label column) of the same samples train to the very
# same bytes; every CSV mistake (missing value, NA, non-numeric cell, label
# out of range or fractional, ragged row, wrong width) names its line and
# column; every array mistake (shape, dtype, Fortran order, truncation,
# missing file, label out of range) names the file.  Determinism: the same
# seed gives the same parameters, blob and log, bit for bit; another seed
# does not.  Without a terminal the progress is one line per epoch; on one
# (script(1)) a live bar.  The
# schedules (step, cosine, warm-up) show in the log's lr column;
# --keep-best, --init, --last-batch pad; the statistics of --standardize
# travel with the parameters to eval, run --params and compile --params.
# Errors: status 1 and no output file; usage: status 2.
#
# Environment (tests/run.sh sets them): GRADC, ROOT, CC.
set -u
. "${ROOT:-$PWD}/tests/lib.sh"
export GRADC_CACHE="$T/cache" # built drivers, reused by identical builds
$CC -std=c99 -O1 -o "$T/mknpy" "$ROOT/tests/mknpy.c" || { echo "cannot build mknpy"; exit 1; }
need_mkst
MLP="$ROOT/models/mlp.nn"
IRIS="$ROOT/models/iris.nn"
sed 1d "$ROOT/data/iris.csv" > "$T/iris.csv" # no header

# last_field LOG N: field N of the last "epoch" line of LOG (split at blanks)
last_acc() { grep '^epoch' "$1" | tail -n 1 | sed -n 's/.*val J.* acc \([0-9.]*\).*/\1/p'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# ---- the seed network on the digits, and eval

"$GRADC" train "$MLP" --data "$ROOT/data/digits.csv" --val-split 0.2 --standardize \
	--epochs 20 --seed 1 --out "$T/d.st" --blob "$T/d.blob" --log "$T/d.csv" \
	--plot "$T/d.svg" >"$T/d.log" 2>&1 || { fail "digits: status $?"; cat "$T/d.log"; }
acc=$(last_acc "$T/d.log")
at_least "${acc:-0}" 0.95 || fail "digits: validation accuracy '$acc' < 0.95"
[ "$(grep -c '^epoch' "$T/d.log")" = 20 ] || fail "digits: not one line per epoch"
grep -q $'\r' "$T/d.log" && fail "digits: a carriage return without a terminal"
[ "$(wc -l < "$T/d.csv")" = 21 ] || fail "digits: the log has not 20 rows"
head -n 1 "$T/d.csv" | grep -qx "epoch,lr,objective,L,s,accuracy,val_objective,val_L,val_s,val_accuracy" ||
	fail "digits: log header $(head -n 1 "$T/d.csv")"
grep -q "<polyline" "$T/d.svg" || fail "digits: no curve in the plot"
"$T/mkst" -l "$T/d.st" > "$T/d.list"
grep -qx "W1 F32 \[32, 64\]" "$T/d.list" && grep -qx "standardize.x.mean F64 \[64\]" "$T/d.list" &&
	grep -qx "standardize.x.std F64 \[64\]" "$T/d.list" || { fail "digits: parameters file"; cat "$T/d.list"; }
"$GRADC" eval "$MLP" --data "$ROOT/data/digits.csv" --params "$T/d.st" --pred "$T/pred.csv" \
	>"$T/e.log" 2>&1 || { fail "eval: status $?"; cat "$T/e.log"; }
acc=$(sed -n 's/^accuracy: //p' "$T/e.log")
at_least "${acc:-0}" 0.97 || fail "eval: accuracy '$acc' on all the digits"
grep -q "^confusion matrix" "$T/e.log" && grep -qE "^ +9( +[0-9]+){10}$" "$T/e.log" ||
	{ fail "eval: no confusion matrix"; cat "$T/e.log"; }
[ "$(wc -l < "$T/pred.csv")" = 1798 ] || fail "eval: --pred has not one line per digit"
# the accuracy is the share of predictions equal to the labels
right=$(paste -d, <(sed 1d "$T/pred.csv") <(cut -d, -f65 "$ROOT/data/digits.csv") | awk -F, '$1 == $2' | wc -l)
awk -v r="$right" -v a="$acc" 'BEGIN { exit !(sprintf("%.4f", r / 1797) == a) }' ||
	fail "eval: accuracy $acc, but --pred has $right of 1797 right"

# ---- iris, and the formats: every one trains to the same bytes

train_iris() { # NAME DATA ARGS...: train 3 epochs without shuffling into $T/NAME.st
	local name=$1 data=$2
	shift 2
	"$GRADC" train "$IRIS" --data "$data" --epochs 3 --no-shuffle --out "$T/$name.st" "$@" \
		>"$T/$name.log" 2>&1 || { fail "$name: status $?"; cat "$T/$name.log"; }
}
"$GRADC" train "$IRIS" --data "$ROOT/data/iris.csv" --val-split 0.2 --standardize --epochs 60 \
	--seed 3 --out "$T/iris.st" >"$T/iris.log" 2>&1 || { fail "iris: status $?"; cat "$T/iris.log"; }
acc=$(last_acc "$T/iris.log")
at_least "${acc:-0}" 0.9 || fail "iris: validation accuracy '$acc' < 0.9"

train_iris csv "$ROOT/data/iris.csv"
train_iris plain "$T/iris.csv"
sed 's/$/\r/' "$ROOT/data/iris.csv" > "$T/crlf.csv"
train_iris crlf "$T/crlf.csv"
# the label first, named in a quoted header
{ echo '"species",a,b,c,d'; awk -F, '{ print $5 "," $1 "," $2 "," $3 "," $4 }' "$T/iris.csv"; } > "$T/named.csv"
train_iris named "$T/named.csv" --label species
for f in plain crlf named; do
	cmp -s "$T/csv.st" "$T/$f.st" || fail "csv: $f trains to other parameters"
done
mkdir -p "$T/f4" "$T/f8"
cut -d, -f1-4 "$T/iris.csv" | "$T/mknpy" "$T/f4/x.npy" '<f4' 150,4
cut -d, -f5 "$T/iris.csv" | "$T/mknpy" "$T/f4/y.npy" '<i4' 150
cut -d, -f1-4 "$T/iris.csv" | "$T/mknpy" "$T/f8/x.npy" '<f8' 150,4
cut -d, -f5 "$T/iris.csv" | "$T/mknpy" "$T/f8/y.npy" '<i8' 150
train_iris f4 "$T/f4"
train_iris f8 "$T/f8"
"$T/mkst" "$T/data.safetensors" "x:F32:150,4:l=$(cut -d, -f1-4 "$T/iris.csv" | paste -sd,)" \
	"y:I64:150:l=$(cut -d, -f5 "$T/iris.csv" | paste -sd,)"
train_iris st "$T/data.safetensors"
for f in f4 f8 st; do
	cmp -s "$T/csv.st" "$T/$f.st" || fail "arrays: $f trains to other parameters than the CSV"
done

# ---- determinism, schedules, the last batch, --keep-best, --init

det() { # NAME SEED: 3 epochs of digits with everything written (one build)
	"$GRADC" train "$MLP" --data "$ROOT/data/digits.csv" --val "$ROOT/data/digits.csv" \
		--standardize --epochs 3 --seed "$2" --out "$T/$1.st" --blob "$T/$1.blob" \
		--log "$T/$1.csv" >/dev/null 2>&1 || fail "determinism $1: status $?"
}
det r1 5
det r2 5
det r3 6
for x in st blob csv; do # (r2 ran the cached driver of r1)
	cmp -s "$T/r1.$x" "$T/r2.$x" || fail "determinism: the same seed gives another .$x"
done
cmp -s "$T/r1.st" "$T/r3.st" && fail "determinism: another seed gives the same parameters"
GRADC_CACHE=off det r4 5
cmp -s "$T/r1.st" "$T/r4.st" || fail "determinism: a fresh build gives other parameters"

# on a terminal: a live bar within the epoch, each epoch's line over it
if command -v script >/dev/null 2>&1; then
	script -qc "'$GRADC' train '$MLP' --data '$ROOT/data/digits.csv' --val '$ROOT/data/digits.csv' \
		--standardize --epochs 2 --out '$T/tty.st'" /dev/null > "$T/tty.log" 2>&1
	grep -q $'\r\033\[Kepoch 2/2 \[=' "$T/tty.log" && grep -q $'\r\033\[Kepoch  2/2  J ' "$T/tty.log" ||
		{ fail "no live bar on a terminal"; cat -A "$T/tty.log" | cut -c1-200; }
fi

lr_col() { cut -d, -f2 "$T/$1.csv" | sed 1d | paste -sd' '; }
train_iris step "$T/iris.csv" --schedule step --step-size 1 --gamma 0.5 --log "$T/step.csv"
[ "$(lr_col step)" = "0.00999999978 0.00499999989 0.00249999994" ] || fail "step decay: lr $(lr_col step)"
train_iris cos "$T/iris.csv" --schedule cosine --min-lr 0.001 --warmup 1 --lr 0.02 --log "$T/cos.csv"
set -- $(lr_col cos)
[ "$1" = 0.0199999996 ] && [ "$3" = 0.00100000005 ] && at_least "$1" "$2" ||
	fail "warm-up and cosine: lr $(lr_col cos)"
train_iris pad "$T/iris.csv" --last-batch pad
cmp -s "$T/plain.st" "$T/pad.st" && fail "--last-batch pad trains as drop"
"$GRADC" train "$IRIS" --data "$T/iris.csv" --batch 200 --out "$T/no.st" >"$T/log" 2>&1
[ $? = 1 ] && grep -q "150 training samples, fewer than one batch of 200" "$T/log" ||
	{ fail "a batch larger than the data"; cat "$T/log"; }
train_iris best "$T/iris.csv" --val "$T/iris.csv" --keep-best --epochs 4
grep -q "^kept epoch [1-4] (lowest validation objective" "$T/best.log" || fail "--keep-best says nothing"
train_iris init "$T/iris.csv" --init "$T/iris.st" --epochs 1
grep -q "inputs standardized" "$T/init.log" || fail "--init does not carry the statistics"
"$T/mkst" "$T/badinit.st" W1:F32:4,16:rand1
"$GRADC" train "$IRIS" --data "$T/iris.csv" --init "$T/badinit.st" --out "$T/no.st" >"$T/log" 2>&1
[ $? = 1 ] && grep -q "parameter 'W1' has shape \[4, 16\]; expected \[16, 4\]" "$T/log" ||
	{ fail "--init of a wrong shape"; cat "$T/log"; }

# a regression without outputs or tracked values: the objective alone
printf 'model lin\nbatch 4\ninput x[3]\ninput t[1]\nparam W[1, 3] ~ zeros\nE = mse(W @ x, t)\nminimize E with sgd(lr = 0.1)\n' > "$T/lin.nn"
awk 'BEGIN { for (i = 0; i < 40; i++) { a = i % 7 / 7; b = i % 5 / 5; c = i % 3 / 3;
	print a "," b "," c "," 2 * a - b + 0.5 * c } }' > "$T/lin.csv"
"$GRADC" train "$T/lin.nn" --data "$T/lin.csv" --epochs 60 --out "$T/lin.st" > "$T/lin.log" 2>&1 ||
	{ fail "lin: status $?"; cat "$T/lin.log"; }
"$GRADC" eval "$T/lin.nn" --data "$T/lin.csv" --params "$T/lin.st" > "$T/lin.log" 2>&1
j=$(sed -n 's/^objective: //p' "$T/lin.log")
awk -v j="${j:-1}" 'BEGIN { exit !(j < 1e-3) }' && ! grep -q accuracy "$T/lin.log" ||
	{ fail "lin: eval"; cat "$T/lin.log"; }
"$GRADC" train "$T/lin.nn" --data "$T/lin.csv" --standardize >"$T/log" 2>&1
[ $? = 1 ] && grep -q "has no output, so gradc cannot tell its features from its targets" "$T/log" ||
	fail "--standardize without outputs"

# ---- the statistics travel: eval, run --params, compile --params

"$GRADC" eval "$IRIS" --data "$T/iris.csv" --params "$T/iris.st" > "$T/ie.log" 2>&1 ||
	fail "iris eval: status $?"
grep -q "inputs standardized" "$T/ie.log" || fail "eval does not standardize"
"$GRADC" run "$IRIS" --in "$T/data.safetensors" --params "$T/iris.st" --out "$T/run.st" >"$T/log" 2>&1 ||
	{ fail "run --params: status $?"; cat "$T/log"; }
j_run=$("$T/mkst" -p "$T/run.st" objective)
j_eval=$(sed -n 's/^objective: //p' "$T/ie.log")
awk -v a="$j_run" -v b="$j_eval" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }' ||
	fail "run --params gives objective $j_run, eval $j_eval"
"$GRADC" compile "$IRIS" --infer-only --params "$T/iris.st" -o "$T/fw" ||
	fail "compile --params with statistics"
grep -q "x - x_mean" "$T/fw/iris.c" && grep -q "/ x_std" "$T/fw/iris.c" ||
	fail "compile --params does not standardize in the generated code"

# ---- mistakes in the data: status 1, a message with the place, no output

bad() { # NAME DATA WANT [ARGS...]: train must fail with WANT in the message
	local name=$1 data=$2 want=$3
	shift 3
	rm -f "$T/no.st"
	"$GRADC" train "$IRIS" --data "$data" --out "$T/no.st" "$@" >"$T/log" 2>&1
	local st=$?
	if [ $st != 1 ] || ! grep -qF -- "$want" "$T/log"; then
		fail "$name: status $st, expected 1 and '$want'"
		cat "$T/log"
	fi
	[ -e "$T/no.st" ] && fail "$name: an output was written"
}
edit() { sed "$1" "$ROOT/data/iris.csv" > "$T/e.csv"; }
edit '5s/^4.6,3.1,/4.6,,/'
bad "missing value" "$T/e.csv" "e.csv:5:5: error: missing value in column 2"
edit '6s/3.6/NA/'
bad "NA" "$T/e.csv" "e.csv:6:5: error: missing value 'NA' in column 2"
edit '8s/3.4/abc/'
bad "non-numeric" "$T/e.csv" "e.csv:8:5: error: 'abc' in column 2 is not a number"
edit '9s/,0$/,3/'
bad "label out of range" "$T/e.csv" "e.csv:9:17: error: label 3 is outside [0, 3) (the classes of 'y')"
edit '10s/,0$/,-1/'
bad "negative label" "$T/e.csv" "e.csv:10:17: error: label -1 is outside [0, 3)"
edit '11s/,0$/,1.5/'
bad "fractional label" "$T/e.csv" "e.csv:11:17: error: label 1.5 is not a whole number"
edit '12s/,0$//'
bad "ragged row" "$T/e.csv" "e.csv:12:1: error: 4 values, but line 2 has 5"
sed 's/$/\r/' "$T/e.csv" > "$T/e2.csv"
bad "ragged row, CRLF" "$T/e2.csv" "e2.csv:12:1: error: 4 values, but line 2 has 5"
bad "wrong width" "$ROOT/data/digits.csv" "digits.csv: 65 columns, but '$IRIS' takes 5 per sample: input 'x' [4] (4 columns) and the label 'y' (1 column)"
printf '\n\n' > "$T/empty.csv"
bad "no rows" "$T/empty.csv" "empty.csv: no data rows"
bad "no such column" "$T/named.csv" "named.csv:1: no column named 'kind'" --label kind
bad "label without header" "$T/iris.csv" "names a column, but the file has no header" --label y
bad "no such file" "$T/nothing.csv" "cannot read '$T/nothing.csv'"
mkdir -p "$T/n1" "$T/n2" "$T/n3" "$T/n4" "$T/n5" "$T/n6"
cut -d, -f1-3 "$T/iris.csv" | "$T/mknpy" "$T/n1/x.npy" '<f4' 150,3
cp "$T/f4/y.npy" "$T/n1/"
bad "npy shape" "$T/n1" "n1/x.npy: input 'x' has shape [150, 3]; expected F32 or F64 [B, 4]"
cp "$T/f4/x.npy" "$T/n2/"
bad "npy missing" "$T/n2" "n2: no 'y.npy' for input 'y' (int32 or int64 of shape (N,))"
cp "$T/f4/x.npy" "$T/n3/"
cut -d, -f5 "$T/iris.csv" | "$T/mknpy" "$T/n3/y.npy" '|u1' 150
bad "npy dtype" "$T/n3" "n3/y.npy: dtype '|u1' is not read (float32, float64, int32 or int64"
cp "$T/f4/y.npy" "$T/n4/"
cut -d, -f1-4 "$T/iris.csv" | "$T/mknpy" -f "$T/n4/x.npy" '<f4' 150,4
bad "npy fortran" "$T/n4" "n4/x.npy: a Fortran-order array"
cp "$T/f4/y.npy" "$T/n5/"
head -c 1000 "$T/f4/x.npy" > "$T/n5/x.npy"
bad "npy truncated" "$T/n5" "n5/x.npy: truncated: 872 bytes of data, the shape needs 2400"
cp "$T/f4/x.npy" "$T/n6/"
(cut -d, -f5 "$T/iris.csv" | sed '7s/.*/5/') | "$T/mknpy" "$T/n6/y.npy" '<i4' 150
bad "npy label" "$T/n6" "n6/y.npy: label 'y'[6] = 5 is outside [0, 3)"
"$T/mkst" "$T/fl.st" x:F32:150,4:rand1 y:F32:150:mod3
bad "safetensors dtype" "$T/fl.st" "fl.st: input 'y' has dtype F32; expected I32 or I64"
rm -f "$T/no.st"
"$GRADC" train "$MLP" --data "$ROOT/data/digits.csv" --val "$ROOT/data/digits.csv" --standardize \
	--lr 1e30 --epochs 1 --out "$T/no.st" >"$T/log" 2>&1
[ $? = 1 ] && grep -q "the objective is not finite (a smaller --lr?) (status 2 at epoch 1, step" "$T/log" ||
	{ fail "non-finite objective"; cat "$T/log"; }
[ -e "$T/no.st" ] && fail "non-finite objective: an output was written"

# ---- usage: status 2

usage() { # NAME ARGS...
	local name=$1
	shift
	"$GRADC" "$@" >"$T/log" 2>&1
	[ $? = 2 ] || { fail "usage $name: status not 2"; cat "$T/log"; }
}
usage "no data" train "$IRIS"
usage "keep-best without validation" train "$IRIS" --data "$T/iris.csv" --keep-best
usage "both validations" train "$IRIS" --data "$T/iris.csv" --val "$T/iris.csv" --val-split 0.2
usage "bad schedule" train "$IRIS" --data "$T/iris.csv" --schedule linear
usage "bad split" train "$IRIS" --data "$T/iris.csv" --val-split 1.5
usage "bad last batch" train "$IRIS" --data "$T/iris.csv" --last-batch keep
usage "eval without params" eval "$IRIS" --data "$T/iris.csv"
usage "eval with train options" eval "$IRIS" --data "$T/iris.csv" --params "$T/iris.st" --epochs 3

# the cache: the iris build ran many times, built once
n=$(ls "$T/cache" | grep -c "^trainer-")
[ "$n" -le 5 ] || fail "the build cache is not reused: $n builds"

[ $fails = 0 ] && echo "t_train: all passed"
[ $fails = 0 ]
