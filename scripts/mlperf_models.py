#!/usr/bin/env python3
"""mlperf_models.py: write models/{kws_dscnn,vww_mobilenet,ic_resnet8,
ad_autoencoder}.nn, the four MLPerf Tiny reference networks, and print
their parameter and multiply-add counts (computed here, independently of
gradc, from the layer list).  A dev tool: the .nn files are checked in;
run it again only to change them (python3 scripts/mlperf_models.py).

The layer lists follow the reference .tflite files of mlcommons/tiny
(trained_models/), not the Keras code where they differ: KWS's final
average pool is 25x5, ResNet-8 has 16/32/64 filters.  Batch norm is folded
into the preceding layer (weights + a bias [C, 1, 1]), as in the .tflite.
Keras "SAME" padding is asymmetric: total = max((out - 1) s + k - in, 0),
floor(total / 2) before and the rest after.

Each model trains its last two layers (weights and biases) and keeps the
rest `frozen`: on-device transfer learning.  Batch 1: inference on a
microcontroller runs one sample at a time.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Biases start small and random, as the folded batch norm of a trained
# model leaves them: with zeros, a ReLU whose input is all zero sits
# exactly on its kink, where `gradc check`'s central differences see 1/2.
BIAS = "uniform(-0.2, 0.2)"


def same_pad(n, k, s):
    out = (n + s - 1) // s
    tot = max((out - 1) * s + k - n, 0)
    return out, tot // 2, tot - tot // 2


class Net:
    def __init__(self, name, header):
        self.name = name
        self.lines = list(header)
        self.params = []   # (name, shape, init, frozen)
        self.body = []
        self.macs = 0

    def param(self, name, shape, init):
        self.params.append([name, shape, init, True])

    def text(self, train):
        out = list(self.lines)
        decls = ["param %s[%s] ~ %s" % (n, ", ".join(map(str, shape)), init)
                 for n, shape, init, _ in self.params]
        w = max(map(len, decls))
        for d, p in zip(decls, self.params):
            out.append(d if p[0] in train else d.ljust(w) + " frozen")
        out.append("")
        col = max(len(code) for code, _ in self.body if _) + 2
        for code, comment in self.body:
            out.append(code.ljust(col) + "# " + comment if comment else code)
        return "\n".join(out) + "\n"

    def line(self, code, comment=""):
        self.body.append((code, comment))

    def count(self):
        c = 0
        for _, shape, _, _ in self.params:
            n = 1
            for d in shape:
                n *= d
            c += n
        return c


def conv(net, x, y, cin, cout, h, w, k, s, name, act="relu", groups=1, comment=""):
    """y = act(conv2d(x, W) + b), SAME padding; returns (h, w) out."""
    kh, kw = k
    ho, pt, pb = same_pad(h, kh, s)
    wo, pl, pr = same_pad(w, kw, s)
    W, b = "W" + name, "b" + name
    net.param(W, [cout, cin // groups, kh, kw], "he")
    net.param(b, [cout, 1, 1], BIAS)
    args = [x, W]
    if s != 1:
        args.append("stride = %d" % s)
    if (pt, pl, pb, pr) != (0, 0, 0, 0):
        if pt == pb and pl == pr:
            args.append("padding = %d" % pt if pt == pl else "padding = (%d, %d)" % (pt, pl))
        else:
            args.append("padding = (%d, %d, %d, %d)" % (pt, pl, pb, pr))
    if groups != 1:
        args.append("groups = %d" % groups)
    e = "conv2d(%s) + %s" % (", ".join(args), b)
    if act:
        e = "%s(%s)" % (act, e)
    net.line("%s = %s" % (y, e), comment)
    net.macs += ho * wo * cout * (cin // groups) * kh * kw
    return ho, wo


def dense(net, x, y, nin, nout, name, act="relu", comment=""):
    W, b = "W" + name, "b" + name
    net.param(W, [nout, nin], "he")
    net.param(b, [nout], BIAS)
    e = "%s @ %s + %s" % (W, x, b)
    if act:
        e = "%s(%s)" % (act, e)
    net.line("%s = %s" % (y, e), comment)
    net.macs += nin * nout


def tail(net, loss, name, comment=""):
    net.line(loss, comment)
    for code in ("", "output o", "track " + name, "minimize %s with sgd(lr = 0.01)" % name):
        net.line(code)


def kws():
    net = Net("kws_dscnn", [
        "# kws_dscnn.nn: MLPerf Tiny keyword spotting, DS-CNN (small): 49 frames x",
        "# 10 MFCC features -> 12 classes.  The reference .tflite's layers with batch",
        "# norm folded (22,604 parameters, 2,656,768 multiply-adds per inference):",
        "# a 10x4 stride-2 convolution (Keras SAME: 4 rows above, 5 below, 1 column",
        "# each side), four depthwise-separable blocks, a 25x5 average pool, a dense",
        "# layer.  On-device transfer learning: the last pointwise convolution and",
        "# the classifier train, everything before them is frozen.",
        "# (written by scripts/mlperf_models.py)",
        "model kws_dscnn",
        "batch 1",
        "",
        "input x[1, 49, 10]                # MFCC features, [C, H, W]",
        "input y int                       # keyword class",
    ])
    h, w = conv(net, "x", "h0", 1, 64, 49, 10, (10, 4), 2, "0", comment="[64, 25, 5]")
    prev = "h0"
    for i in range(1, 5):
        conv(net, prev, "d%d" % i, 64, 64, h, w, (3, 3), 1, "d%d" % i, groups=64,
             comment="depthwise 3x3")
        conv(net, "d%d" % i, "p%d" % i, 64, 64, h, w, (1, 1), 1, "p%d" % i,
             comment="pointwise 1x1")
        prev = "p%d" % i
    net.line("a = avgpool2d(p4, (25, 5))", "[64, 1, 1]")
    net.line("f = flatten(a)", "[64]")
    dense(net, "f", "o", 64, 12, "fc", act=None, comment="logits")
    tail(net, "L = cross_entropy(o, y)", "L")
    return net, ["Wp4", "bp4", "Wfc", "bfc"]


def vww():
    net = Net("vww_mobilenet", [
        "# vww_mobilenet.nn: MLPerf Tiny visual wake words, MobileNetV1 alpha 0.25:",
        "# a 96x96 RGB image -> person / no person.  The reference .tflite's layers",
        "# with batch norm folded (210,850 parameters, 7,489,664 multiply-adds per",
        "# inference): a 3x3 stride-2 convolution, 13 depthwise-separable blocks",
        "# (ReLU, not ReLU6, as the reference), a 3x3 average pool, a dense layer.",
        "# Keras SAME with stride 2 on an even size pads 0 before and 1 after.",
        "# On-device transfer learning: the last pointwise convolution and the",
        "# classifier train, everything before them is frozen.",
        "# (written by scripts/mlperf_models.py)",
        "model vww_mobilenet",
        "batch 1",
        "",
        "input x[3, 96, 96]                # RGB image, [C, H, W]",
        "input y int                       # 1: a person",
    ])
    h, w = conv(net, "x", "h0", 3, 8, 96, 96, (3, 3), 2, "0", comment="[8, 48, 48]")
    blocks = [(1, 16), (2, 32), (1, 32), (2, 64), (1, 64), (2, 128)] + [(1, 128)] * 5 + \
        [(2, 256), (1, 256)]
    prev, c = "h0", 8
    for i, (s, co) in enumerate(blocks, 1):
        h2, w2 = conv(net, prev, "d%d" % i, c, c, h, w, (3, 3), s, "d%d" % i, groups=c,
                      comment="depthwise 3x3/%d" % s)
        conv(net, "d%d" % i, "p%d" % i, c, co, h2, w2, (1, 1), 1, "p%d" % i,
             comment="[%d, %d, %d]" % (co, h2, w2))
        prev, c, h, w = "p%d" % i, co, h2, w2
    net.line("a = avgpool2d(p13, 3)", "[256, 1, 1]")
    net.line("f = flatten(a)", "[256]")
    dense(net, "f", "o", 256, 2, "fc", act=None, comment="logits")
    tail(net, "L = cross_entropy(o, y)", "L")
    return net, ["Wp13", "bp13", "Wfc", "bfc"]


def resnet():
    net = Net("ic_resnet8", [
        "# ic_resnet8.nn: MLPerf Tiny image classification, ResNet-8 (resnet_v1_eembc,",
        "# 16/32/64 filters as the reference .tflite): a 32x32 RGB image -> 10",
        "# classes (CIFAR-10).  Batch norm folded (77,706 parameters, 12,501,632",
        "# multiply-adds per inference).  Three residual stacks; the second and",
        "# third halve the size (3x3 stride 2, Keras SAME: pad 0 before, 1 after)",
        "# with a 1x1 stride-2 projection shortcut (no batch norm), written after",
        "# the main branch as the .tflite orders it.  On-device transfer learning:",
        "# the last 3x3 convolution and the classifier train, the rest is frozen.",
        "# (written by scripts/mlperf_models.py)",
        "model ic_resnet8",
        "batch 1",
        "",
        "input x[3, 32, 32]                # RGB image, [C, H, W]",
        "input y int                       # class",
    ])
    conv(net, "x", "x0", 3, 16, 32, 32, (3, 3), 1, "0", comment="[16, 32, 32]")
    conv(net, "x0", "y1", 16, 16, 32, 32, (3, 3), 1, "1", comment="stack 1")
    conv(net, "y1", "z1", 16, 16, 32, 32, (3, 3), 1, "2", act=None)
    net.line("x1 = relu(x0 + z1)", "identity shortcut")
    h, w = conv(net, "x1", "y2", 16, 32, 32, 32, (3, 3), 2, "3", comment="stack 2: [32, 16, 16]")
    conv(net, "y2", "z2", 32, 32, h, w, (3, 3), 1, "4", act=None)
    conv(net, "x1", "s2", 16, 32, 32, 32, (1, 1), 2, "5", act=None, comment="projection shortcut")
    net.line("x2 = relu(s2 + z2)")
    h, w = conv(net, "x2", "y3", 32, 64, 16, 16, (3, 3), 2, "6", comment="stack 3: [64, 8, 8]")
    conv(net, "y3", "z3", 64, 64, h, w, (3, 3), 1, "7", act=None)
    conv(net, "x2", "s3", 32, 64, 16, 16, (1, 1), 2, "8", act=None, comment="projection shortcut")
    net.line("x3 = relu(s3 + z3)")
    net.line("a = avgpool2d(x3, 8)", "[64, 1, 1]")
    net.line("f = flatten(a)", "[64]")
    dense(net, "f", "o", 64, 10, "fc", act=None, comment="logits")
    tail(net, "L = cross_entropy(o, y)", "L")
    return net, ["W7", "b7", "Wfc", "bfc"]


def ad():
    net = Net("ad_autoencoder", [
        "# ad_autoencoder.nn: MLPerf Tiny anomaly detection, the DCASE 2020 task 2",
        "# baseline: a dense autoencoder of 5 frames x 128 log-mel bands (640) through",
        "# a bottleneck of 8, trained on the squared reconstruction error (the anomaly",
        "# score).  Batch norm folded (265,864 parameters, 264,192 multiply-adds per",
        "# inference).  On-device transfer learning: the last two layers train.",
        "# (written by scripts/mlperf_models.py)",
        "model ad_autoencoder",
        "batch 1",
        "",
        "input x[640]                      # 5 frames x 128 log-mel bands",
    ])
    sizes = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    prev = "x"
    for i in range(10):
        y = "h%d" % (i + 1) if i < 9 else "o"
        dense(net, prev, y, sizes[i], sizes[i + 1], str(i + 1),
              act="relu" if i < 9 else None,
              comment="bottleneck" if sizes[i + 1] == 8 else ("reconstruction" if i == 9 else ""))
        prev = y
    tail(net, "E = mse(o, x)", "E", "the anomaly score")
    return net, ["W9", "b9", "W10", "b10"]


def main():
    want = {"kws_dscnn": (22604, 2656768), "vww_mobilenet": (210850, 7489664),
            "ic_resnet8": (77706, 12501632), "ad_autoencoder": (265864, 264192)}
    ok = True
    for make in (kws, vww, resnet, ad):
        net, train = make()
        path = os.path.join(ROOT, "models", net.name + ".nn")
        with open(path, "w") as f:
            f.write(net.text(train))
        p, m = net.count(), net.macs
        good = (p, m) == want[net.name]
        ok &= good
        print("%-15s params %7d  macs %9d  %s" % (net.name, p, m, "ok" if good else "WRONG"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
