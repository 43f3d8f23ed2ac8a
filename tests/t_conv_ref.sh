#!/bin/bash
# t_conv_ref.sh: the spatial operators against PyTorch (issue 15).  Each
# model tests/ref/conv/NAME.nn runs with `gradc run --dtype f64 --steps 2`
# on NAME.in.st (inputs and parameters); every tensor of NAME.out.st
# (written by PyTorch 1.13 in float64: tests/ref/make_conv_refs.py, not
# needed here) must match within 1e-9 of its largest magnitude: outputs,
# the objective, grad.P of every trainable parameter (none of a frozen
# one), and every parameter after two SGD steps.  OUT must hold exactly
# the tensors the reference holds.  Covers stride > 1, dilation > 1,
# asymmetric padding, groups and depthwise, overlapping and padded pools
# (both count_include_pad rules), global_avgpool, clip (and ReLU6), concat,
# flatten, reshape, a frozen first layer and cross entropy, a pointwise
# convolution behind a frozen depthwise one, and the whole of
# models/kws_dscnn.nn (at batch 3, every parameter random).
. "${ROOT:-.}/tests/lib.sh"
command -v python3 >/dev/null 2>&1 || { echo "python3 is missing (scripts/deps.sh test)"; exit 1; }
n=0
for m in "$ROOT"/tests/ref/conv/*.nn; do
	name=$(basename "$m" .nn)
	ref="$ROOT/tests/ref/conv/$name"
	if ! "$GRADC" run "$m" --dtype f64 --steps 2 --in "$ref.in.st" --out "$T/$name.st" \
		>"$T/$name.log" 2>&1; then
		fail "$name: gradc run failed: $(head -n 5 "$T/$name.log")"
		continue
	fi
	python3 - "$T/$name.st" "$ref.out.st" <<'PY' || fail "$name: differs from PyTorch"
import json, struct, sys

def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        lo, hi = v["data_offsets"]
        fmt = {"F64": "d", "F32": "f", "I32": "i", "I64": "q"}[v["dtype"]]
        data = b[8 + n + lo:8 + n + hi]
        out[k] = (v["shape"], struct.unpack("<%d%s" % (len(data) // struct.calcsize(fmt), fmt), data))
    return out

got, want = load(sys.argv[1]), load(sys.argv[2])
bad = sorted(set(got) ^ set(want))
if bad:
    print("tensors in only one of OUT and the reference:", bad)
    sys.exit(1)
ok = True
for k, (shape, w) in want.items():
    gshape, g = got[k]
    if [d for d in gshape] != shape:
        print("%s: shape %s, want %s" % (k, gshape, shape))
        ok = False
        continue
    scale = max([abs(v) for v in w] + [1e-300])
    err = max([abs(a - b) for a, b in zip(g, w)] + [0.0]) / scale
    if not err <= 1e-9:
        print("%s: relative error %.3g" % (k, err))
        ok = False
sys.exit(0 if ok else 1)
PY
	n=$((n + 1))
done
[ "$n" -ge 22 ] || fail "only $n reference cases found"
echo "$n cases, $fails failures"
[ "$fails" -eq 0 ]
