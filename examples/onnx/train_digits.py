#!/usr/bin/python3
"""train_digits.py: train a small CNN on the 8x8 digits in PyTorch and export it.

A development tool (Debian: apt-get install python3-torch python3-onnx; run
with /usr/bin/python3 examples/onnx/train_digits.py); `make demo-onnx` only
reads what it writes:

  digits_cnn.onnx                 the trained network, opset 13, dynamic batch
  digits_cnn.expected.safetensors the test set, x [360, 1, 8, 8] (raw pixels
                                  0..16) and y [360], and PyTorch's outputs o
                                  [360, 10] on it (eval mode)

The split is the demo's: every fifth row of data/digits.csv (from the
first) is the test set.  The network sees only the digits 0 to 6 while it
trains here (a backbone trained on another task, as in transfer learning):
on the device, `make demo-onnx` fine-tunes its last layer on all ten
classes.  BatchNormalization stays in the file (gradc folds it into the
convolution before it); the input is scaled by 1/16 inside the network.
"""
import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class DigitsCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):  # x [N, 1, 8, 8], pixels 0..16
        x = F.max_pool2d(torch.relu(self.conv1(x / 16)), 2)
        x = F.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        x = self.drop(torch.relu(self.fc1(x.view(x.size(0), -1))))
        return self.fc2(x)


def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dt = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    rows = [list(map(float, line.split(","))) for line in open(os.path.join(ROOT, "data/digits.csv"))]
    data = torch.tensor(rows)
    x, y = data[:, :64].reshape(-1, 1, 8, 8), data[:, 64].long()
    test = torch.arange(len(rows)) % 5 == 0
    xtr, ytr = x[~test], y[~test]
    seen = ytr < 7  # the backbone's task: digits 0 to 6
    xtr, ytr = xtr[seen], ytr[seen]
    torch.manual_seed(0)
    m = DigitsCnn()
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    for epoch in range(30):
        m.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            F.cross_entropy(m(xtr[idx]), ytr[idx]).backward()
            opt.step()
    m.eval()
    with torch.no_grad():
        o = m(x[test])
    acc = (o.argmax(1) == y[test]).float().mean().item()
    print(f"PyTorch: test accuracy {acc:.4f} (trained on the digits 0-6 only)")
    torch.onnx.export(m, x[:1], os.path.join(HERE, "digits_cnn.onnx"), opset_version=13,
                      input_names=["x"], output_names=["o"],
                      dynamic_axes={"x": {0: "N"}, "o": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    write_st(os.path.join(HERE, "digits_cnn.expected.safetensors"),
             {"x": x[test], "y": y[test], "o": o})


if __name__ == "__main__":
    main()
