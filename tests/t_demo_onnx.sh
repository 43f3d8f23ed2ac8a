#!/bin/bash
# t_demo_onnx.sh: `make demo-onnx` at 5 epochs.  The PyTorch CNN of
# examples/onnx/ must import, agree with PyTorch's outputs on the 360 test
# digits (1e-4, every argmax), start at 0.6917 test accuracy (its backbone
# saw the digits 0-6 only) and end above 0.85 after fine-tuning its last
# layer on all ten (deterministic with the seed: 0.9306).
set -eu
cd "$ROOT"
log=build/tests/demo_onnx.log
EPOCHS=5 sh scripts/demo_onnx.sh > "$log" 2>&1 || { tail -30 "$log"; exit 1; }
grep -q "argmax agrees on 360 of 360" "$log" || { echo "inference disagrees"; tail -30 "$log"; exit 1; }
before=$(sed -n 's/^test accuracy before fine-tuning: //p' "$log")
after=$(sed -n 's/^test accuracy after fine-tuning: //p' "$log")
[ "$before" = 0.6917 ] || { echo "accuracy before: '$before', not 0.6917"; exit 1; }
awk -v a="$after" 'BEGIN { exit !(a >= 0.85) }' || { echo "accuracy after $after < 0.85"; exit 1; }
echo "demo-onnx (5 epochs): test accuracy $before before fine-tuning, $after after"
