#!/bin/bash
# t_mlperf.sh: the four MLPerf Tiny reference models of models/ (issue 15)
# against the figures of their reference .tflite files, from `gradc report
# --json` at batch 1 (the models' default):
#   - parameters (batch norm folded): 22,604 / 210,850 / 77,706 / 265,864;
#   - multiply-adds per inference: 2,656,768 / 7,489,664 / 12,501,632 /
#     264,192 (convolutions and products);
#   - the inference arena at or below the live-activation floor of TFLite's
#     op order in float32: 64,000 / 221,184 / 196,608 / 3,072 bytes;
#   - training (the last two layers; the rest frozen): the multiply-adds of
#     the forward pass plus the weight gradients of the two trainable layers
#     and the one input gradient between them, no more (frozen layers
#     prune their backward), and the feature maps kept for the backward
#     pass are those the trainable layers read.
# Also models/cnn.nn at its batch 32: 88,064 multiply-adds a sample
# forward, 166,912 backward (no input gradient of the first layer).
. "${ROOT:-.}/tests/lib.sh"
command -v python3 >/dev/null 2>&1 || { echo "python3 is missing (scripts/deps.sh test)"; exit 1; }
# model params trainable infer_macs train_macs arena_floor kept(names read by backward)
while read -r m params trainable imacs tmacs floor kept; do
	[ -n "$m" ] || continue
	if ! "$GRADC" report "$ROOT/models/$m.nn" --json >"$T/$m.json" 2>"$T/$m.err"; then
		fail "$m: report failed: $(head -n 3 "$T/$m.err")"
		continue
	fi
	python3 - "$T/$m.json" "$params" "$trainable" "$imacs" "$tmacs" "$floor" "$kept" <<'PY' ||
import json, sys
d = json.load(open(sys.argv[1]))
params, trainable, imacs, tmacs, floor = map(int, sys.argv[2:7])
kept = sys.argv[7].split(",")
t, i = d["train"], d["infer"]
bad = []
def want(what, got, exp):
    if got != exp:
        bad.append("%s %s, want %s" % (what, got, exp))
want("batch", d["batch"], 32 if d["model"] == "cnn" else 1)
want("parameters", i["params_count"], params)
want("parameters (training)", t["params_count"], params)
want("trainable", t["trainable_count"], trainable)
want("inference multiply-adds", i["macs"], imacs)
want("training multiply-adds", t["macs"], tmacs)
if i["arena_bytes"] > floor:
    bad.append("inference arena %d above the floor %d" % (i["arena_bytes"], floor))
names = [n for k in t["kept"] if k["read_by"] for n in k["names"]]
for n in kept:
    if n not in names:
        bad.append("'%s' not kept for backward (kept: %s)" % (n, names))
print("%s: %d parameters (%d trainable), %d / %d multiply-adds, inference arena %d (floor %d), kept %s"
      % (d["model"], params, trainable, imacs, tmacs, i["arena_bytes"], floor, names))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
		fail "$m: figures differ from the reference"
done <<'EOF2'
kws_dscnn 22604 4940 2656768 3170304 64000 d4,p4,a
vww_mobilenet 210850 66306 7489664 8080512 221184 d13,p13,a
ic_resnet8 77706 37578 12501632 14862208 196608 y3,x3
ad_autoencoder 265864 99072 264192 444416 3072 h8,h9
cnn 9930 9930 2818048 8159232 163840 h1,p1,h2
EOF2
echo "$fails failures"
[ "$fails" -eq 0 ]
