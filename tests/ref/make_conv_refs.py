#!/usr/bin/python3
"""make_conv_refs.py: reference tensors for the spatial operators, from
PyTorch (a dev tool: `apt-get install python3-torch`, then
`/usr/bin/python3 tests/ref/make_conv_refs.py`; the files it writes are
checked in and tests/t_conv_ref.sh compares `gradc run --dtype f64` with
them, without PyTorch).

For every case NAME it writes, into tests/ref/conv/:
  NAME.nn          the model (SPEC 1 syntax);
  NAME.in.st       IN: every input (batch 3) and every parameter, F64;
  NAME.out.st      what `gradc run NAME.nn --in NAME.in.st --steps 2
                   --dtype f64` must write: each output, `objective` (the
                   batch mean), `grad.P` for every trainable parameter, and
                   every parameter after 2 SGD steps on the same batch;
all computed by torch in float64.  Asymmetric padding is F.pad (zeros for
convolutions and average pools, -inf for max pools) in front of the
operator; count_include_pad = 0 with asymmetric padding divides a sum pool
by a pool of the padded ones.  Values are random normals from a fixed seed,
so ties (max pool) and clip's bounds have probability zero; each case
seeds its own draws, so adding one changes no other.
"""
import json
import os
import struct
import zlib

import torch
import torch.nn.functional as F

torch.manual_seed(15)
torch.set_default_dtype(torch.float64)
B = 3
LR = 0.1
STEPS = 2
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv")


def write_st(path, tensors):
    """A safetensors file: 8-byte header length, JSON header, raw data."""
    header, blobs, off = {}, [], 0
    for name, (dtype, t) in tensors.items():
        t = t.detach().contiguous()
        if dtype == "F64":
            data = struct.pack("<%dd" % t.numel(), *t.flatten().tolist())
        else:
            data = struct.pack("<%di" % t.numel(), *[int(v) for v in t.flatten().tolist()])
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def pad4(p):
    """SPEC's padding: int, (h, w) or (top, left, bottom, right)."""
    if isinstance(p, int):
        return (p, p, p, p)
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    return tuple(p)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv(x, W, stride=1, padding=0, dilation=1, groups=1):
    t, l, b, r = pad4(padding)
    return F.conv2d(F.pad(x, (l, r, t, b)), W, stride=pair(stride), dilation=pair(dilation),
                    groups=groups)


def maxpool(x, k, stride=None, padding=0):
    t, l, b, r = pad4(padding)
    return F.max_pool2d(F.pad(x, (l, r, t, b), value=float("-inf")), pair(k),
                        pair(stride if stride is not None else k))


def avgpool(x, k, stride=None, padding=0, count_include_pad=1):
    t, l, b, r = pad4(padding)
    k, s = pair(k), pair(stride if stride is not None else k)
    total = F.avg_pool2d(F.pad(x, (l, r, t, b)), k, s) * (k[0] * k[1])
    if count_include_pad:
        return total / (k[0] * k[1])
    ones = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))
    return total / (F.avg_pool2d(ones, k, s) * (k[0] * k[1]))


class Case:
    """A model: inputs and parameters with their shapes, the forward in
    torch, the same in the model language."""

    def __init__(self, name, about):
        self.name, self.about = name, about
        torch.manual_seed(zlib.crc32(name.encode()))  # each case its own draws
        self.inputs, self.params, self.labels = {}, {}, {}
        self.frozen = set()
        self.lr = LR
        self.source = None  # the model text, when not written from a body

    def input(self, name, *shape):
        self.inputs[name] = torch.randn(B, *shape)

    def label(self, name, classes):
        self.labels[name] = torch.randint(0, classes, (B,))

    def param(self, name, *shape, frozen=False, scale=0.5):
        self.params[name] = torch.randn(*shape) * scale
        if frozen:
            self.frozen.add(name)

    def text(self, body, outputs):
        lines = ["# %s: %s" % (self.name, self.about),
                 "# (tests/ref/make_conv_refs.py: the expected tensors are PyTorch's)",
                 "model ref_%s" % self.name, "batch %d" % B, ""]
        for n, t in self.inputs.items():
            lines.append("input %s[%s]" % (n, ", ".join(map(str, t.shape[1:]))))
        for n in self.labels:
            lines.append("input %s int" % n)
        for n, t in self.params.items():
            lines.append("param %s[%s] ~ zeros%s" % (n, ", ".join(map(str, t.shape)),
                                                     " frozen" if n in self.frozen else ""))
        lines += [""] + body + ["", "output " + ", ".join(outputs), "minimize J with sgd(lr = %g)" % LR]
        return "\n".join(lines) + "\n"


def make(case, body, forward, outputs):
    """forward(inputs, params) -> (dict of outputs, per-sample J [B])."""
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, case.name + ".nn"), "w") as f:
        f.write(case.source or case.text(body, outputs))
    ins = {n: ("F64", t) for n, t in case.inputs.items()}
    ins.update({n: ("I32", t) for n, t in case.labels.items()})
    ins.update({n: ("F64", t) for n, t in case.params.items()})
    write_st(os.path.join(OUT, case.name + ".in.st"), ins)

    env = dict(case.inputs)
    env.update(case.labels)
    p = {n: t.clone().requires_grad_(n not in case.frozen) for n, t in case.params.items()}
    outs, J = forward(env, p)
    objective = J.mean()
    trainable = [n for n in p if n not in case.frozen]
    grads = torch.autograd.grad(objective, [p[n] for n in trainable])
    res = {n: ("F64", outs[n]) for n in outputs}
    res["objective"] = ("F64", objective)
    res.update({"grad." + n: ("F64", g) for n, g in zip(trainable, grads)})
    for _ in range(STEPS):
        _, J = forward(env, p)
        gs = torch.autograd.grad(J.mean(), [p[n] for n in trainable])
        with torch.no_grad():
            for n, g in zip(trainable, gs):
                p[n] -= case.lr * g
    res.update({n: ("F64", t) for n, t in p.items()})
    write_st(os.path.join(OUT, case.name + ".out.st"), res)
    print("%-16s %s" % (case.name, case.about))


def weighted(o, r):
    """Per-sample J = sum(o * r): every element of o gets its own gradient."""
    return (o * r).flatten(1).sum(1)


# ---- convolutions

def conv_case(name, about, cin, h, w, W, args, groups=1):
    c = Case(name, about)
    c.input("x", cin, h, w)
    c.param("W", *W)
    c.param("b", W[0], 1, 1)
    with torch.no_grad():
        o = conv(c.inputs["x"], c.params["W"], groups=groups, **args)
    c.input("r", *o.shape[1:])
    spec = ", ".join("%s = %s" % (k, v if isinstance(v, int) else "(%s)" % ", ".join(map(str, v)))
                     for k, v in args.items())
    spec += ", groups = %d" % groups if groups != 1 else ""
    body = ["o = conv2d(x, W%s) + b" % (", " + spec if spec else ""),
            "J = sum(o * r)"]

    def fwd(e, p):
        o = conv(e["x"], p["W"], groups=groups, **args) + p["b"]
        return {"o": o}, weighted(o, e["r"])
    make(c, body, fwd, ["o"])


conv_case("conv_plain", "3x3, no padding", 2, 6, 5, (3, 2, 3, 3), {})
conv_case("conv_stride", "stride 2, padding 1, odd sizes", 2, 7, 6, (3, 2, 3, 3),
          {"stride": 2, "padding": 1})
conv_case("conv_dilation", "dilation (2, 3), stride (1, 2), padding (2, 1)", 2, 9, 10,
          (4, 2, 3, 2), {"stride": (1, 2), "padding": (2, 1), "dilation": (2, 3)})
conv_case("conv_asym", "Keras SAME of KWS: 10x4 stride 2, padding (4, 1, 5, 1)", 1, 13, 6,
          (3, 1, 10, 4), {"stride": 2, "padding": (4, 1, 5, 1)})
conv_case("conv_groups", "groups 2, padding 1", 4, 6, 5, (6, 2, 3, 3), {"padding": 1}, groups=2)
conv_case("conv_depthwise", "depthwise 3x3 stride 2, SAME on an even size (0, 0, 1, 1)", 3, 8, 6,
          (3, 1, 3, 3), {"stride": 2, "padding": (0, 0, 1, 1)}, groups=3)
conv_case("conv_pointwise", "1x1, stride 2, 4 to 5 channels", 4, 5, 6, (5, 4, 1, 1), {"stride": 2})
conv_case("conv_dw_mult", "groups 2 with 3 outputs per group, dilation 2", 2, 7, 7, (6, 1, 3, 3),
          {"dilation": 2, "padding": 2}, groups=2)


# pointwise (1x1, stride 1: computed as a product per sample) behind a frozen
# depthwise layer, with bias and ReLU: KWS's and VWW's trainable last layer
c = Case("pointwise_frozen", "frozen depthwise, then a trainable 1x1 stride-1 convolution, bias, ReLU")
c.input("x", 4, 5, 6)
c.param("D", 4, 1, 3, 3, frozen=True)
c.param("W", 6, 4, 1, 1)
c.param("b", 6, 1, 1, scale=0.1)
c.input("r", 6, 5, 6)


def pointwise_fwd(e, p):
    d = F.relu(conv(e["x"], p["D"], padding=1, groups=4))
    o = F.relu(conv(d, p["W"]) + p["b"])
    return {"o": o}, weighted(o, e["r"])


make(c, ["d = relu(conv2d(x, D, padding = 1, groups = 4))", "o = relu(conv2d(d, W) + b)",
         "J = sum(o * r)"], pointwise_fwd, ["o"])


# ---- pools (behind a convolution, so that their gradient reaches a parameter)

def pool_case(name, about, pool_nn, pool_t):
    c = Case(name, about)
    c.input("x", 2, 7, 8)
    c.param("W", 3, 2, 2, 2)
    with torch.no_grad():
        o = pool_t(conv(c.inputs["x"], c.params["W"], padding=1))
    c.input("r", *o.shape[1:])
    body = ["h = conv2d(x, W, padding = 1) - 0.5", "o = %s" % pool_nn, "J = sum(o * r)"]

    def fwd(e, p):
        o = pool_t(conv(e["x"], p["W"], padding=1) - 0.5)
        return {"o": o}, weighted(o, e["r"])
    make(c, body, fwd, ["o"])


pool_case("maxpool_overlap", "3x3 windows, stride 2, padding 1 (overlapping; padding never wins)",
          "maxpool2d(h, 3, stride = 2, padding = 1)", lambda h: maxpool(h, 3, 2, 1))
pool_case("maxpool_asym", "2x3 windows, stride (2, 1), padding (0, 1, 1, 1)",
          "maxpool2d(h, (2, 3), stride = (2, 1), padding = (0, 1, 1, 1))",
          lambda h: maxpool(h, (2, 3), (2, 1), (0, 1, 1, 1)))
pool_case("maxpool_plain", "2x2 windows, stride 2 (the default)", "maxpool2d(h, 2)",
          lambda h: maxpool(h, 2))
pool_case("avgpool_incl", "3x3, stride 2, padding 1, count_include_pad 1 (PyTorch's default)",
          "avgpool2d(h, 3, stride = 2, padding = 1)", lambda h: avgpool(h, 3, 2, 1, 1))
pool_case("avgpool_excl", "3x3, stride 2, padding 1, count_include_pad 0 (ONNX's default)",
          "avgpool2d(h, 3, stride = 2, padding = 1, count_include_pad = 0)",
          lambda h: avgpool(h, 3, 2, 1, 0))
pool_case("avgpool_asym", "3x3 windows, stride (1, 2), padding (1, 0, 0, 1), count_include_pad 0",
          "avgpool2d(h, 3, stride = (1, 2), padding = (1, 0, 0, 1), count_include_pad = 0)",
          lambda h: avgpool(h, 3, (1, 2), (1, 0, 0, 1), 0))
pool_case("avgpool_asym_incl", "(2, 3) windows, stride 2, padding (0, 1, 1, 1), count_include_pad 1",
          "avgpool2d(h, (2, 3), stride = 2, padding = (0, 1, 1, 1))",
          lambda h: avgpool(h, (2, 3), 2, (0, 1, 1, 1), 1))
pool_case("global_avgpool", "global average over H and W", "global_avgpool(h)",
          lambda h: h.mean((2, 3)))


# ---- clip, concat, flatten, reshape

c = Case("clip", "clip(x, -0.3, 0.4) after a convolution, and ReLU6 as clip(x, 0, 6)")
c.input("x", 2, 5, 5)
c.param("W", 2, 2, 3, 3)
c.input("r", 2, 3, 3)
make(c, ["h = conv2d(x, W)", "o = clip(h, -0.3, 0.4)", "q = clip(h * 4, 0, 6)",
         "J = sum(o * r) + sum(q * r) / 3"],
     lambda e, p: ({"o": conv(e["x"], p["W"]).clamp(-0.3, 0.4),
                    "q": (conv(e["x"], p["W"]) * 4).clamp(0, 6)},
                   weighted(conv(e["x"], p["W"]).clamp(-0.3, 0.4), e["r"]) +
                   weighted((conv(e["x"], p["W"]) * 4).clamp(0, 6), e["r"]) / 3),
     ["o", "q"])

c = Case("concat", "concat of two convolutions and the input along channels")
c.input("x", 2, 5, 4)
c.param("W1", 3, 2, 3, 3)
c.param("W2", 1, 2, 1, 1)
c.input("r", 6, 5, 4)
make(c, ["o = concat(conv2d(x, W1, padding = 1), x, conv2d(x, W2))", "J = sum(o * r)"],
     lambda e, p: (lambda o: ({"o": o}, weighted(o, e["r"])))(
         torch.cat([conv(e["x"], p["W1"], padding=1), e["x"], conv(e["x"], p["W2"])], 1)),
     ["o"])

c = Case("reshape", "flatten, reshape to a matrix and back to an image, products and a convolution")
c.input("x", 2, 4, 3)
c.param("W", 3, 2, 2, 2)
c.param("A", 5, 4)
c.param("C", 6, 3)
c.param("V", 2, 4, 2, 2)
c.input("r", 5, 2)
c.input("s", 2, 2, 2)


def reshape_fwd(e, p):
    f = conv(e["x"], p["W"], padding=(1, 0, 0, 1)).flatten(1)   # [B, 36]
    o = p["A"] @ f.reshape(-1, 4, 9) @ p["C"].reshape(9, 2)
    k = conv(f.reshape(-1, 4, 3, 3), p["V"])
    return {"o": o, "k": k, "f": f}, weighted(o, e["r"]) + weighted(k, e["s"])


make(c, ["h = conv2d(x, W, padding = (1, 0, 0, 1))   # [3, 4, 3]",
         "f = flatten(h)                             # [36]",
         "m = reshape(f, 4, 9)",
         "o = A @ m @ reshape(C, 9, 2)",
         "k = conv2d(reshape(f, 4, 3, 3), V)",
         "J = sum(o * r) + sum(k * s)"], reshape_fwd, ["o", "k", "f"])


# ---- a small network: frozen first layer, ReLU6, cross entropy

c = Case("net", "stride-2 conv (frozen), ReLU6, max pool, depthwise, average pool, dense, cross entropy")
c.input("x", 2, 10, 9)
c.label("y", 4)
c.param("W1", 4, 2, 3, 3, frozen=True)
c.param("b1", 4, 1, 1, frozen=True)
c.param("D", 4, 1, 3, 3)
c.param("e", 4, 1, 1)
c.param("V", 4, 16)
c.param("c", 4)


def net_fwd(e, p):
    h = (conv(e["x"], p["W1"], stride=2, padding=(1, 1, 1, 1)) + p["b1"]).clamp(0, 6)  # [4,5,5]
    m = maxpool(h, 2, 1)                                                               # [4,4,4]
    d = F.relu(conv(m, p["D"], padding=1, groups=4) + p["e"])                          # [4,4,4]
    a = avgpool(d, 2).flatten(1)                                                       # [16]
    o = a @ p["V"].t() + p["c"]
    return {"o": o}, F.cross_entropy(o, e["y"].long(), reduction="none")


make(c, ["h = clip(conv2d(x, W1, stride = 2, padding = 1) + b1, 0, 6)",
         "m = maxpool2d(h, 2, stride = 1)",
         "d = relu(conv2d(m, D, padding = 1, groups = 4) + e)",
         "a = flatten(avgpool2d(d, 2))",
         "o = V @ a + c",
         "J = cross_entropy(o, y)"], net_fwd, ["o"])


# ---- a whole MLPerf model: models/kws_dscnn.nn (its frozen layers, Keras'
# asymmetric SAME padding, the 25x5 pool), at batch 3, every parameter random

def kws():
    path = os.path.join(os.path.dirname(OUT), "..", "..", "models", "kws_dscnn.nn")
    text = open(path).read()
    c = Case("kws_dscnn", "models/kws_dscnn.nn at batch 3 (its text, renamed)")
    c.source = text.replace("model kws_dscnn", "model ref_kws_dscnn").replace("batch 1", "batch %d" % B)
    c.lr = 0.01
    c.input("x", 1, 49, 10)
    c.label("y", 12)
    for line in text.splitlines():
        if line.startswith("param "):
            name, rest = line[6:].split("[", 1)
            shape = [int(v) for v in rest.split("]")[0].split(",")]
            fan_in = 1
            for v in shape[1:]:
                fan_in *= v
            bias = name.startswith("b")  # b0, bd1, bp1, ..., bfc
            c.param(name, *shape, frozen=line.rstrip().endswith("frozen"),
                    scale=0.1 if bias else (2.0 / fan_in) ** 0.5)

    def fwd(e, p):
        t = F.relu(conv(e["x"], p["W0"], stride=2, padding=(4, 1, 5, 1)) + p["b0"])
        for i in range(1, 5):
            d = F.relu(conv(t, p["Wd%d" % i], padding=1, groups=64) + p["bd%d" % i])
            t = F.relu(conv(d, p["Wp%d" % i]) + p["bp%d" % i])
        o = avgpool(t, (25, 5)).flatten(1) @ p["Wfc"].t() + p["bfc"]
        return {"o": o}, F.cross_entropy(o, e["y"].long(), reduction="none")
    make(c, None, fwd, ["o"])


kws()
