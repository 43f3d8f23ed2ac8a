#!/bin/sh
# embedded.sh: build every model for a Cortex-M4F, run it under QEMU, compare
# with the host, and report its cost (flash, RAM, stack, instructions).
#
#   sh scripts/embedded.sh [MODEL.nn ...]      (default: models/*.nn)
#
# Called by `make embedded` after `deps.sh embedded`; tests/t_embedded.sh
# runs it in `make test`.  Needs build/gradc.  Work goes to build/embedded/.
#
# For each model NAME (embedded/harness.c is the program; its glue.h, which
# adapts it to the model's inputs, is gradc compile --harness embedded's):
#   1. gradc compile: the training build, and the --infer-only build with
#      the initial parameters (drawn by NAME_init on the host) baked in with
#      --params (const, in flash).  Big models (parameters over 256 KiB:
#      deep, wide) are built at --batch 1 and take their initial parameters
#      as raw bytes linked into flash, in both builds: on the M4 NAME_init
#      would take ~1e10 instructions, and gradc compile --params ~25 s;
#   2. three firmwares and their host twins: "libm" (training, the C
#      library's expf/logf...), "nolibm" (training, -DGRADC_NO_LIBM, linked
#      without libm) and "infer" (inference-only, -DGRADC_NO_LIBM);
#   3. QEMU (mps2-an386, semihosting) runs each firmware with the
#      instruction-counting plugin (embedded/insncount.c); compare.awk
#      compares device and host: every value (objective and tracks per step,
#      checksums of parameters and outputs) to relative 1e-5, and the
#      nolibm and infer builds bit for bit (see README, "Embedded");
#   4. the costs: flash = (text + data) of the firmware minus that of the
#      harness alone (EMB_BASELINE); RAM from the symbols; stack static
#      (stack.awk over -fcallgraph-info) and measured (painted stack);
#      instructions per training step and per inference.
# Ends with "embedded: N passed, M failed" (a model passes when its three
# builds build, run and agree); exit status 1 if any failed.
#
# Environment: EMB_STEPS (training steps, default 3), CC (host compiler).
set -u
ROOT=$(pwd)
GRADC="$ROOT/build/gradc"
OUT="$ROOT/build/embedded"
CC=${CC:-cc}
STEPS=${EMB_STEPS:-3}
BIG=262144
STEP_FLAGS="-DEMB_STEPS=$STEPS"

ARM_CC=arm-none-eabi-gcc
# a section per function and object, so the linker keeps only what is used
ARM_CPU="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 --specs=picolibc.specs
	-ffunction-sections -fdata-sections"
# flash: the 4 MiB SSRAM1 at 0; RAM: the board's 16 MiB PSRAM at 0x21000000
# (the big models' training needs 7.5 MB)
ARM_LINK="--oslib=semihost --crt0=semihost
	-Wl,--defsym=__flash=0 -Wl,--defsym=__flash_size=4M
	-Wl,--defsym=__ram=0x21000000 -Wl,--defsym=__ram_size=16M
	-Wl,--defsym=__stack_size=32K"
# -ffp-contract=off: no fused multiply-add on the M4 (x86-64 has none by
# default), so both sides round every operation the same way
COMMON="-std=c99 -O2 -ffp-contract=off"
# the host twin compiles the device's kernels (a portable file carries one
# per register shape, gradc_rt.h's GRADC_KERNELS; 1: the scalar FPU's), so
# that the two run the same operations in the same order
HOST_SHAPE="-DGRADC_KERNELS=1"
GEN_WARN="-Wall -Wextra -Wpedantic -Werror"
QEMU="qemu-system-arm -M mps2-an386 -nographic -monitor none -semihosting"
LIBM_NAMES='^(exp|log|tanh|sqrt|cos|sin|pow|fabs|expf|logf|tanhf|sqrtf|cosf|sinf|powf|fabsf|__ieee754_.*)$'

die() {
	echo "embedded: $*" >&2
	exit 2
}

[ -x "$GRADC" ] || die "no $GRADC (run make first)"
for t in $ARM_CC qemu-system-arm "$CC"; do
	command -v "$t" >/dev/null 2>&1 || die "'$t' not installed (sh scripts/deps.sh embedded)"
done

mkdir -p "$OUT"
PLUGIN="$OUT/insncount.so"
$CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC -fvisibility=hidden \
	-o "$PLUGIN" embedded/insncount.c || die "cannot build the QEMU plugin"

# size ELF: flash bytes (text + data) and RAM bytes (data + bss)
flash_of() { arm-none-eabi-size "$1" | awk 'NR == 2 { print $1 + $2 }'; }
# ELF SYMBOL: its size in bytes, 0 if absent
sym_size() { arm-none-eabi-nm -S -t d "$1" | awk -v s="$2" '$4 == s { v = $2 + 0 } END { print v + 0 }'; }
# bytes of the model's other static data (NAME_* in .data/.bss but the arena)
model_ram() {
	arm-none-eabi-nm -S -t d "$1" | awk -v p="$2_" -v a="$2_arena" \
		'index($4, p) == 1 && $4 != a && $3 ~ /^[bBdD]$/ { s += $2 } END { print s + 0 }'
}

# the harness alone, for the flash baseline
base="$OUT/baseline"
mkdir -p "$base"
$ARM_CC $ARM_CPU $COMMON -Wall -Wextra -DEMB_BASELINE -Iruntime -o "$base/fw.elf" embedded/harness.c \
	$ARM_LINK >"$base/build.log" 2>&1 || { cat "$base/build.log"; die "baseline firmware does not build"; }
BASE_FLASH=$(flash_of "$base/fw.elf")

passed=0
failed=0
failures=""
REPORT="$OUT/report.txt"
INITS=""
COSTS="$OUT/costs.txt"
: >"$COSTS"
cat >"$REPORT" <<EOF
Cortex-M4F (arm-none-eabi-gcc -O2, picolibc), bytes: flash = code + rodata
(+ const parameters in 'infer') beyond the harness; arena, params, state: RAM;
stk.st: worst-case stack of NAME_train_step / NAME_infer from the call graph
('+': through libm, not counted); stk.run: measured under QEMU; instructions
executed per training step / per inference (QEMU TCG plugin), $STEPS steps run.
EOF

# build_fw DIR VARIANT MODEL_DIR NAME EXTRA_FLAGS LIBS: the firmware DIR/VARIANT.elf
# and the host program DIR/VARIANT.host, .su/.ci beside the objects
build_pair() {
	dir=$1 v=$2 src=$3 name=$4 flags=$5 libs=$6
	mkdir -p "$dir/$v.o"
	{
		$ARM_CC $ARM_CPU $COMMON $GEN_WARN $flags -fstack-usage -fcallgraph-info=su \
			-Iruntime -c -o "$dir/$v.o/$name.o" "$src/$name.c" &&
			$ARM_CC $ARM_CPU $COMMON $GEN_WARN $flags -fstack-usage -fcallgraph-info=su \
				-Iruntime -c -o "$dir/$v.o/gradc_rt.o" runtime/gradc_rt.c &&
			$ARM_CC $ARM_CPU $COMMON -Wall -Wextra $flags -I"$src" -Iruntime -o "$dir/$v.elf" \
				embedded/harness.c "$dir/$v.o/$name.o" "$dir/$v.o/gradc_rt.o" $ARM_LINK $libs &&
			$CC $COMMON $GEN_WARN $HOST_SHAPE $flags -Iruntime -c -o "$dir/$v.o/host_$name.o" "$src/$name.c" &&
			$CC $COMMON $GEN_WARN $HOST_SHAPE $flags -Iruntime -c -o "$dir/$v.o/host_rt.o" runtime/gradc_rt.c &&
			$CC $COMMON -Wall -Wextra $flags -I"$src" -Iruntime -o "$dir/$v.host" \
				embedded/harness.c "$dir/$v.o/host_$name.o" "$dir/$v.o/host_rt.o" $libs
	} >"$dir/$v.build.log" 2>&1
}

# run_pair DIR VARIANT: device and host outputs, instruction counts
run_pair() {
	dir=$1 v=$2
	mark=$(arm-none-eabi-nm "$dir/$v.elf" | awk '$3 == "emb_mark" { print $1 }')
	rm -f "$dir/$v.insns"
	timeout 300 $QEMU -kernel "$dir/$v.elf" \
		-plugin "$PLUGIN,mark=0x$mark,out=$dir/$v.insns" \
		>"$dir/$v.qemu.log" 2>"$dir/$v.device.txt" || return 1
	"$dir/$v.host" >"$dir/$v.host.txt" 2>"$dir/$v.host.log" || return 1
}

# variant DIR VARIANT MODEL_DIR NAME FLAGS LIBS: build, run and compare one
# variant; prints what failed (nothing if it passed)
variant() {
	if ! build_pair "$@"; then
		echo "$2-build"
	elif ! run_pair "$1" "$2"; then
		echo "$2-run"
	elif ! awk -v TOL=1e-5 -f embedded/compare.awk "$1/$2.device.txt" "$1/$2.host.txt" \
		>"$1/$2.compare" 2>&1; then
		echo "$2-differs"
	elif [ "$2" != libm ] && ! grep -q "identical" "$1/$2.compare"; then
		echo "$2-not-bit-identical"
	fi
}

# insn_of DIR VARIANT WHAT: the instruction count of the last call WHAT
# (init, infer, train): the marks pair up with the "stack WHAT" lines
insn_of() {
	awk -v w="$3" 'FNR == 1 { f++ }
		f == 1 && $1 == "insns" { d[++n] = $2 }
		f == 2 && $1 == "stack" { k++; if ($2 == w) last = k }
		END { if (last) print d[last + 1] - d[1]; else print "-" }' \
		"$1/$2.insns" "$1/$2.device.txt"
}
# cost_of DIR VARIANT WHAT: "INSNS fp N ldst N ldm N branch N other N cycles
# N" of the last call WHAT (the plugin's classes, less the marking's own)
cost_of() {
	awk -v w="$3" 'FNR == 1 { f++ }
		f == 1 && $1 == "insns" { n++; for (i = 2; i <= NF; i++) v[n, i] = $i; nf = NF }
		f == 2 && $1 == "stack" { k++; if ($2 == w) last = k }
		END {
			if (!last) { print "-"; exit }
			printf "%d", v[last + 1, 2] - v[1, 2]
			for (i = 3; i < nf; i += 2) printf " %s %d", v[1, i], v[last + 1, i + 1] - v[1, i + 1]
			printf "\n"
		}' "$1/$2.insns" "$1/$2.device.txt"
}
# macs MODE FLAGS...: the multiply-adds of one call (gradc report --json)
macs_of() {
	mode=$1
	shift
	"$GRADC" report "$@" --json | awk -v m="\"$mode\":" '$1 == m {
		for (i = 1; i < NF; i++) if ($i == "\"macs\":") { v = $(i + 1); sub(/[,}].*/, "", v); print v } }'
}
stack_of() { awk -v w="$3" '$1 == "stack" && $2 == w { v = $3 } END { print v + 0 }' "$1/$2.device.txt"; }

printf '%-9s %-13s %5s %9s %9s %9s %9s %7s %7s %12s %12s  %s\n' \
	model build batch flash arena params state stk.st stk.run insns/step insns/infer \
	"host vs device" >>"$REPORT"

# issue 20: int8 builds (--quantize int8): int8_variant MODEL NAME DIR BATCH
# compiles DIR/int8 from DIR/params.safetensors, runs it as the "int8"
# variant (inference only) and adds its cost row and m4-cost line; `gradc
# report`'s code estimate of the build must be within 20% of its .text
INT8_MODELS=${INT8_MODELS-mlp cnn kws_dscnn vww_mobilenet ic_resnet8 ad_autoencoder}
$CC -std=c99 -O1 -Iruntime/host -o "$OUT/mkst" tests/mkst.c runtime/host/gradc_safetensors.c ||
	die "cannot build tests/mkst.c"
int8_variant() {
	model=$1 name=$2 d=$3 batch=$4
	mkdir -p "$d/int8"
	# shellcheck disable=SC2046 # one NAME:F32:16,DIMS:rand7 word per float input
	"$OUT/mkst" "$d/calib.safetensors" $(awk '/^input [A-Za-z_0-9]+\[/ {
		n = $2; sub(/\[.*/, "", n); s = $0; sub(/^[^[]*\[/, "", s); sub(/\].*/, "", s)
		gsub(/ /, "", s); printf "%s:F32:16,%s:rand7 ", n, s }' "$model") >>"$d/gradc.log" 2>&1 &&
		"$GRADC" compile "$model" --infer-only --params "$d/params.safetensors" --quantize int8 \
			--calib "$d/calib.safetensors" ${batch:+--batch $batch} -o "$d/int8" >>"$d/gradc.log" 2>&1 ||
		{ fail "gradc-int8"; return; }
	cp "$d/train/glue.h" "$d/int8/glue.h"
	r=$(variant "$d" int8 "$d/int8" "$name" "$STEP_FLAGS -DEMB_INFER_ONLY" "-lm")
	[ -z "$r" ] || { fail "$r"; return; }
	elf="$d/int8.elf"
	flash=$(($(flash_of "$elf") - BASE_FLASH))
	arena=$(sym_size "$elf" "${name}_arena_")
	sst=$(awk -v ROOTS="${name}_infer" -f embedded/stack.awk "$d/int8.o/$name.ci" "$d/int8.o/gradc_rt.ci" |
		awk '{ print $2 }')
	printf '%-9s %-13s %5s %9s %9s %9s %9s %7s %7s %12s %12s  %s\n' "$name" int8 \
		"${batch:-$(awk -v k="${name}_BATCH" '$1 == "#define" && $2 == k { print $3 }' "$d/int8/$name.h")}" \
		"$flash" "$arena" 0 0 "$sst" "$(stack_of "$d" int8 infer)" - "$(insn_of "$d" int8 infer)" \
		"$(cat "$d/int8.compare")" >>"$INT8_REPORT"
	# report's code estimate against the model's measured .text: within 20%
	text=$(arm-none-eabi-size -A "$d/int8.o/$name.o" | awk '$1 ~ /^\.text/ { t += $2 } END { print t + 0 }')
	est=$("$GRADC" report "$model" --params "$d/params.safetensors" --quantize int8 \
		--calib "$d/calib.safetensors" ${batch:+--batch $batch} --json 2>>"$d/gradc.log" |
		sed -n 's/.*"code_estimate_bytes": \([0-9]*\).*/\1/p')
	echo "  $name int8 code: $text bytes measured, $est estimated by gradc report" >>"$INT8_COSTS"
	awk -v t="$text" -v e="${est:-0}" 'BEGIN { exit !(t > 0 && e >= 0.8 * t && e <= 1.2 * t) }' ||
		fail "int8 code estimate $est vs $text measured"
	c=$(cost_of "$d" int8 infer)
	m=$(macs_of infer "$model" ${batch:+--batch $batch})
	if [ "$c" != - ] && [ -n "$m" ]; then
		echo "m4-cost $name int8 ${c%% *} $m" >>"$INT8_COSTS"
		echo "$name int8 $c macs $m" | awk '{ printf "  %-9s %-5s %5.2f instructions/MAC, %5.2f cycles/MAC (estimated): fp %d, ldst %d, ldm %d, branch %d, other %d, cycles %d\n",
			$1, $2, $3 / $17, $15 / $17, $5, $7, $9, $11, $13, $15 }' >>"$INT8_COSTS"
	fi
}
INT8_REPORT="$OUT/int8_report.txt"
INT8_COSTS="$OUT/int8_costs.txt"
: >"$INT8_REPORT"
: >"$INT8_COSTS"

MODELS=$*
# issue 18: builds fitted by --fit to their smallest RAM reachable (recomputation;
# fitmicro: micro-batches too)
FIT_MODELS=${FIT_MODELS-tests/models/fitchain.nn tests/models/fitmicro.nn}
[ -n "$MODELS" ] || MODELS="$(ls models/*.nn) $FIT_MODELS"

for model in $MODELS; do
	name=$(basename "$model" .nn)
	d="$OUT/$name"
	rm -rf "$d"
	mkdir -p "$d/train" "$d/infer"
	ok=1
	why=""
	fail() {
		ok=0
		why="$why $1"
	}

	# 1. the training build; big models again at batch 1
	batch=""
	fit="" nopack=""
	case " $FIT_MODELS " in *" $model "*)
		fit="--budget $("$GRADC" report "$model" --sweep-budget "$d/curve.svg" |
			awk '$1 ~ /^[0-9]+$/ { m = $1 } END { print m }') --fit"
		# shellcheck disable=SC2086
		# (the same products in the inference-only build when the fit gives up packing)
		"$GRADC" report "$model" $fit | grep -q "packing: off" && nopack="--no-pack" ;;
	esac
	# shellcheck disable=SC2086 # $fit: two options or none
	if ! "$GRADC" compile "$model" $fit --harness embedded -o "$d/train" >"$d/gradc.log" 2>&1; then
		fail "gradc-compile"
	else
		pb=$(awk -v k="${name}_PARAMS_BYTES" '$1 == "#define" && $2 == k { print $3 }' "$d/train/$name.h")
		if [ "${pb:-0}" -gt $BIG ]; then
			batch=1
			"$GRADC" compile "$model" --batch 1 --harness embedded -o "$d/train" >"$d/gradc.log" 2>&1 ||
				fail "gradc-compile"
		fi
	fi
	cp "$d/train/${name}_glue.h" "$d/train/glue.h" 2>>"$d/gradc.log" || fail glue
	cp "$d/train/glue.h" "$d/infer/glue.h"

	# the initial parameters, from the host
	if [ $ok = 1 ]; then
		$CC $COMMON -DEMB_SAVE_PARAMS -I"$d/train" -Iruntime -Iruntime/host -o "$d/save" \
			embedded/harness.c "$d/train/$name.c" runtime/gradc_rt.c \
			runtime/host/gradc_safetensors.c -lm >"$d/save.log" 2>&1 &&
			"$d/save" "$d/params.safetensors" "$d/params.bin" >/dev/null 2>>"$d/save.log" ||
			fail "initial-params"
	fi

	binflag=""
	if [ -n "$batch" ]; then
		binflag="-DEMB_PARAMS_BIN=\"$d/params.bin\""
		"$GRADC" compile "$model" --batch 1 --infer-only -o "$d/infer" >>"$d/gradc.log" 2>&1 ||
			fail "gradc-infer-only"
	elif [ $ok = 1 ]; then
		"$GRADC" compile "$model" --infer-only --params "$d/params.safetensors" $nopack \
			-o "$d/infer" >>"$d/gradc.log" 2>&1 || fail "gradc-infer-only"
	fi

	# 2, 3. build, run, compare: the three variants in parallel
	for v in libm nolibm infer; do
		[ $ok = 1 ] || break
		case $v in
		libm) src="$d/train" f="$STEP_FLAGS $binflag" libs="-lm" ;;
		nolibm) src="$d/train" f="$STEP_FLAGS $binflag -DGRADC_NO_LIBM" libs="" ;;
		infer) src="$d/infer" f="$STEP_FLAGS $binflag -DGRADC_NO_LIBM -DEMB_INFER_ONLY" libs="" ;;
		esac
		variant "$d" $v "$src" "$name" "$f" "$libs" >"$d/$v.result" &
	done
	wait
	for v in libm nolibm infer; do
		[ $ok = 1 ] || break
		r=$(cat "$d/$v.result")
		[ -z "$r" ] || fail "$r"
	done

	# issue 20: the int8 build of the same initial parameters (calibrated on
	# 16 inputs of mkst's rand7), its device run bit for bit the host's
	case " $INT8_MODELS " in *" $name "*)
		[ $ok = 1 ] && int8_variant "$model" "$name" "$d" "$batch" ;;
	esac

	# the baked parameters are the initial ones: the inference-only build's
	# results are the training build's first inference, bit for bit
	if [ $ok = 1 ] && ! awk 'FNR == 1 { f++ } ($1 == "val" || $1 == "hash") && !seen[f, $2]++ {
			if (f == 1) want[$2] = $3; else if (want[$2] != $3) bad = 1 }
		END { exit bad }' "$d/nolibm.device.txt" "$d/infer.device.txt"; then
		fail "baked-params-differ"
	fi

	# no libm: nothing the model and the runtime need comes from libm
	if [ $ok = 1 ]; then
		u=$(arm-none-eabi-nm -u "$d/nolibm.o/$name.o" "$d/nolibm.o/gradc_rt.o" |
			awk '{ print $NF }' | grep -E "$LIBM_NAMES" | sort -u | tr '\n' ' ')
		[ -z "$u" ] || fail "nolibm-needs:$u"
	fi

	# 4. the costs
	if [ $ok = 1 ]; then
		for v in libm nolibm infer; do
			elf="$d/$v.elf"
			blob=$(sym_size "$elf" emb_init_params)
			[ $v = infer ] || blob=0 # training: the blob is what init would draw
			flash=$(($(flash_of "$elf") - BASE_FLASH - $(sym_size "$elf" emb_init_params) + blob))
			arena=$(sym_size "$elf" "${name}_arena")
			other=$(model_ram "$elf" "$name")
			if [ $v = infer ]; then
				params=0 state=0
				b="infer"
			else
				params=$(awk -v k="${name}_PARAMS_BYTES" '$1 == "#define" && $2 == k { print $3 }' "$d/train/$name.h")
				state=$(awk -v k="${name}_STATE_BYTES" '$1 == "#define" && $2 == k { print $3 }' "$d/train/$name.h")
				b="train"
				[ $v = nolibm ] && b="train-nolibm"
			fi
			[ "$other" -gt 0 ] && arena="$arena+$other"
			ci="$d/$v.o/$name.ci $d/$v.o/gradc_rt.ci"
			if [ $v = infer ]; then
				sst=$(awk -v ROOTS="${name}_infer" -f embedded/stack.awk $ci | awk '{ print $2 }')
				srun=$(stack_of "$d" $v infer)
				ins="-"
			else
				sst=$(awk -v ROOTS="${name}_train_step" -f embedded/stack.awk $ci | awk '{ print $2 }')
				srun=$(stack_of "$d" $v train)
				ins=$(insn_of "$d" $v train)
			fi
			inf=$(insn_of "$d" $v infer)
			cmp=$(cat "$d/$v.compare")
			printf '%-9s %-13s %5s %9s %9s %9s %9s %7s %7s %12s %12s  %s\n' \
				"$name" $b "${batch:-$(awk -v k="${name}_BATCH" '$1 == "#define" && $2 == k { print $3 }' "$d/train/$name.h")}" \
				"$flash" "$arena" "$params" "$state" "$sst" "$srun" "$ins" "$inf" "$cmp" >>"$REPORT"
		done
		# instructions per multiply-add: the libm-free training step, the
		# inference of the infer build; classes and the estimated cycles
		for b in train infer; do
			if [ $b = train ]; then v=nolibm; else v=infer; fi
			c=$(cost_of "$d" $v $b)
			m=$(macs_of $b "$model" ${batch:+--batch $batch})
			[ "$c" = - ] || [ -z "$m" ] && continue
			set -- $c
			echo "m4-cost $name $b $1 $m" >>"$COSTS"
			echo "$name $b $c macs $m" | awk '{ printf "  %-9s %-5s %5.2f instructions/MAC, %5.2f cycles/MAC (estimated): fp %d, ldst %d, ldm %d, branch %d, other %d, cycles %d\n",
				$1, $2, $3 / $17, $15 / $17, $5, $7, $9, $11, $13, $15 }' >>"$COSTS"
		done
		init=$(insn_of "$d" libm init)
		[ "$init" != "-" ] && INITS="$INITS $name=$init"
	fi

	if [ $ok = 1 ]; then
		passed=$((passed + 1))
		echo "PASS  $name"
	else
		failed=$((failed + 1))
		failures="$failures $name"
		echo "FAIL  $name:$why (logs in $d)"
	fi
done

[ -n "$INITS" ] && echo "instructions of NAME_init (libm build):$INITS" >>"$REPORT"
# per model and build: m4-cost MODEL BUILD INSTRUCTIONS MACS (MACS: gradc's
# count, graph_macs), then the classes of the plugin and the cycles estimated
# from the Cortex-M4 TRM's table (embedded/insncount.c)
{
	echo
	echo "Cortex-M4F cost per multiply-add (train: a libm-free training step; infer: an inference):"
	cat "$COSTS"
} >>"$REPORT"
if [ -s "$INT8_REPORT" ]; then
	{
		echo
		echo "int8 builds (--quantize int8; flash: code + int8 weights beyond the harness;"
		echo "arena: the int8 build's static arena; host vs device bit for bit):"
		cat "$INT8_REPORT"
		echo
		echo "Cortex-M4F cost per multiply-add of the int8 inference:"
		cat "$INT8_COSTS"
	} >>"$REPORT"
fi
echo
cat "$REPORT"
[ "$failed" -gt 0 ] && echo "failed:$failures"
echo "embedded: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
