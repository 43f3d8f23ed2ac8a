#!/bin/bash
# t_demo.sh: the main job at a reduced number of epochs.  Deterministic with
# the fixed seed: 5 epochs of `gradc train` reach 0.9528 test accuracy; the
# test asks for 0.90.  The demo itself checks that the saved blob reloads
# (into a training build compiled with the parameters' statistics) to the
# predictions of `gradc eval`, that a corrupted blob is refused, and that
# the inference-only build with baked parameters, fed raw pixels, predicts
# what the training build predicted.
set -eu
cd "$ROOT"
log=build/tests/demo.log
EPOCHS=5 sh scripts/demo.sh > "$log" 2>&1 || { tail -30 "$log"; exit 1; }
grep -q "reloads to identical predictions; with one bit flipped it is refused" "$log" ||
	{ echo "reload check missing"; tail -30 "$log"; exit 1; }
grep -q "predicts the same class as the training build on 360 of 360" "$log" ||
	{ echo "baked inference build disagrees"; tail -30 "$log"; exit 1; }
last=$(tail -n 1 "$log")
acc=$(echo "$last" | sed -n 's/^test accuracy: \(0\.[0-9]\{4\}\)$/\1/p')
[ -n "$acc" ] || { echo "last line is not 'test accuracy: 0.XXXX': $last"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.90) }' || { echo "accuracy $acc < 0.90"; exit 1; }
echo "demo (5 epochs): $last"
