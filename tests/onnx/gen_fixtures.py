#!/usr/bin/python3
"""gen_fixtures.py: the ONNX fixtures of tests/t_onnx.sh, exported by PyTorch.

A development tool, run once by hand (Debian: apt-get install python3-torch
python3-onnx; /usr/bin/python3 tests/onnx/gen_fixtures.py); `make test` reads
the committed files and never needs PyTorch.  For each model NAME it writes
into tests/onnx/:

  NAME.onnx              torch.onnx.export of the model (eval mode)
  NAME.in.safetensors    the inputs: x [B, ...] and the labels y [B] (I64)
  NAME.ref.safetensors   PyTorch's results: the output `o` [B, ...]; and for
                         the models whose parameters gradc keeps as they are
                         (no BatchNormalization): `objective` (the mean cross
                         entropy of o and y), `grad.P` for every parameter P
                         (P: the initializer's name made an identifier, SPEC
                         4's rule), and P after 3 steps of SGD (lr 0.01) on
                         the same batch, as `gradc run --steps 3` writes them

Models are built in float64 (exact weights: gradc's f64 build must agree to
1e-9 relative) with seeded weights; the f32 comparison reads the same files.
"""
import json
import os
import re
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
B = 4


def write_st(path, tensors):
    """A safetensors file of {name: tensor} (F64, F32 or I64), names in order."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dt = {torch.float64: "F64", torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def nn_name(onnx_name):
    """SPEC 4: characters outside [A-Za-z0-9_] become _, a leading digit gets _."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", onnx_name)
    return "_" + s if s[:1].isdigit() else s


class Dense(nn.Module):  # Gemm, ReLU
    def __init__(s):
        super().__init__()
        s.fc1, s.fc2 = nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(s, x):
        return s.fc2(torch.relu(s.fc1(x)))


class Relu6(nn.Module):  # Clip (min and max as inputs), LeakyReLU, Tanh, Sigmoid
    def __init__(s):
        super().__init__()
        s.fc1, s.fc2, s.fc3 = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(s, x):
        h = F.relu6(s.fc1(x) * 4)
        h = F.leaky_relu(s.fc2(h), 0.1) + torch.tanh(h) * torch.sigmoid(h)
        return s.fc3(h)


class Cnn(nn.Module):  # Conv, ReLU, MaxPool, AveragePool, x.view(x.size(0), -1), Gemm
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        s.conv2 = nn.Conv2d(4, 6, 3, stride=1, padding=1)
        s.fc = nn.Linear(6 * 2 * 1, 3)

    def forward(s, x):
        x = F.max_pool2d(torch.relu(s.conv1(x)), 2)
        x = F.avg_pool2d(torch.relu(s.conv2(x)), 2)
        return s.fc(x.view(x.size(0), -1))


class Depthwise(nn.Module):  # grouped and depthwise Conv, ReLU6, Pad folded, global pool
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        s.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        s.pw = nn.Conv2d(4, 6, 1)
        s.fc = nn.Linear(6, 3)

    def forward(s, x):
        x = F.relu6(s.conv1(x))
        x = F.relu6(s.dw(F.pad(x, (1, 0, 0, 1))))
        x = F.avg_pool2d(s.pw(x), 2, stride=1, padding=1, count_include_pad=False)
        x = F.adaptive_avg_pool2d(x, 1)
        return s.fc(torch.flatten(x, 1))


class Residual(nn.Module):  # residual adds, concat, softmax-free head, Flatten
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        s.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        s.conv3 = nn.Conv2d(6, 4, 1)
        s.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(s, x):
        h = torch.relu(s.conv1(x)) + x
        h = torch.relu(s.conv2(h) + h)
        h = torch.cat([h, x * 0.5], 1)
        h = F.max_pool2d(s.conv3(h), 2, padding=1)
        return s.fc(torch.flatten(h, 1))


class BnFolded(nn.Module):  # Conv -> BatchNormalization (folded), Linear -> BatchNorm1d
    def __init__(s):
        super().__init__()
        s.conv = nn.Conv2d(1, 4, 3)
        s.bn = nn.BatchNorm2d(4)
        s.fc1 = nn.Linear(4 * 2 * 2, 5)
        s.bn1 = nn.BatchNorm1d(5)
        s.fc2 = nn.Linear(5, 3)

    def forward(s, x):
        x = F.max_pool2d(torch.relu(s.bn(s.conv(x))), 2)
        return s.fc2(torch.relu(s.bn1(s.fc1(x.view(x.size(0), -1)))))


class BnUnfolded(nn.Module):  # BatchNormalization as scale and shift (after ReLU)
    def __init__(s):
        super().__init__()
        s.conv = nn.Conv2d(2, 3, 3, padding=1)
        s.bn = nn.BatchNorm2d(3)
        s.fc1 = nn.Linear(3 * 4 * 4, 5)
        s.bn1 = nn.BatchNorm1d(5)
        s.fc2 = nn.Linear(5, 3)

    def forward(s, x):
        x = s.bn(torch.relu(s.conv(x)))
        return s.fc2(s.bn1(torch.relu(s.fc1(torch.flatten(x, 1)))))


class Matmul(nn.Module):  # MatMul, Transpose, Softmax, LogSoftmax, Sub, Div, Exp, Abs, Sqrt
    def __init__(s):
        super().__init__()
        s.w = nn.Parameter(torch.randn(4, 5) * 0.5)
        s.fc = nn.Linear(5 * 4, 3)

    def forward(s, x):  # x [B, 3, 4]
        h = torch.matmul(x, s.w)                       # [B, 3, 5]
        h = torch.softmax(h, -1) - torch.log_softmax(h, -1) / 2
        h = torch.matmul(h.transpose(1, 2), x)         # [B, 5, 4]
        h = torch.sqrt(torch.abs(h) + 1) + torch.exp(-h) / 4
        return s.fc(h.reshape(x.size(0), -1))


MODELS = [
    # name, class, input shape, opset, trainable comparison, BatchNorm
    ("dense", Dense, (6,), 13, True),
    ("dense_op11", Dense, (6,), 11, True),
    ("dense_op17", Dense, (6,), 17, True),
    ("relu6", Relu6, (6,), 13, True),
    ("cnn", Cnn, (1, 8, 6), 13, True),
    ("cnn_op11", Cnn, (1, 8, 6), 11, True),
    ("cnn_op17", Cnn, (1, 8, 6), 17, True),
    ("depthwise", Depthwise, (2, 5, 5), 13, True),
    ("residual", Residual, (3, 5, 5), 13, True),
    ("matmul", Matmul, (3, 4), 13, True),
    ("matmul_op17", Matmul, (3, 4), 17, True),
    ("bn_folded", BnFolded, (1, 6, 6), 13, False),
    ("bn_unfolded", BnUnfolded, (2, 4, 4), 13, False),
]


def randomize_bn(m, g):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g, dtype=torch.float64) * 0.3)
            mod.running_var.copy_(torch.rand(c, generator=g, dtype=torch.float64) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g, dtype=torch.float64) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g, dtype=torch.float64) * 0.2)


def export(name, cls, shape, opset, train):
    torch.manual_seed(hash(name) % 1000)
    g = torch.Generator().manual_seed(7)
    m = cls().double().eval()
    randomize_bn(m, g)
    x = torch.randn((B,) + shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (B,), generator=g)
    path = os.path.join(HERE, name + ".onnx")
    # PRESERVE keeps BatchNormalization in the file (EVAL would let PyTorch
    # fold it into the Conv itself); the model is in eval mode either way
    torch.onnx.export(m, x, path, opset_version=opset, input_names=["x"], output_names=["o"],
                      dynamic_axes={"x": {0: "N"}, "o": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    write_st(os.path.join(HERE, name + ".in.safetensors"), {"x": x, "y": y})
    o = m(x)
    ref = {"o": o}
    if train:
        import onnx
        inits = {t.name for t in onnx.load(path).graph.initializer}
        params = dict(m.named_parameters())
        missing = [p for p in params if p not in inits]
        assert not missing, (name, missing, inits)
        loss = F.cross_entropy(o, y)
        loss.backward()
        ref["objective"] = loss.detach()
        for p, t in params.items():
            ref["grad." + nn_name(p)] = t.grad.clone()
        opt = torch.optim.SGD(m.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
        for p, t in params.items():
            ref[nn_name(p)] = t.detach().clone()
    write_st(os.path.join(HERE, name + ".ref.safetensors"), ref)
    print("wrote", name, "opset", opset)


def handmade():
    """ops.onnx, written with onnx.helper: what PyTorch does not export
    (Gemm's alpha, beta and transB = 0, auto_pad SAME_UPPER with a stride,
    dilations, AveragePool with count_include_pad = 1, Flatten axis 2,
    Unsqueeze and Squeeze of values, Reshape [-1, 20], Neg, Sub); its
    reference is the same computation written in PyTorch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = torch.Generator().manual_seed(11)
    p = {"W1": (3, 2, 3, 3), "B1": (3,), "W2": (4, 3, 2, 2), "M": (9, 5), "G": (20, 3), "C": (3,)}
    p = {k: (torch.randn(s, generator=g, dtype=torch.float64) * 0.4).requires_grad_() for k, s in p.items()}
    x = torch.randn(B, 2, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (B,), generator=g)

    def model(x):
        c1 = F.conv2d(F.pad(x, (0, 1, 0, 1)), p["W1"], p["B1"], stride=2)
        c2 = F.conv2d(c1, p["W2"], padding=1, dilation=2)
        a = F.avg_pool2d(F.pad(c2, (1, 0, 1, 0)), 2, stride=1)
        s = -a - c2
        q = s.reshape(x.size(0), 4, 9)
        h = torch.matmul(q, p["M"]).transpose(1, 2).reshape(-1, 20)
        return 0.5 * (F.leaky_relu(h, 0.2) @ p["G"]) + 2 * p["C"]

    D = TensorProto.DOUBLE
    ints = lambda name, v: numpy_helper.from_array(torch.tensor(v).numpy(), name)
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv_same", auto_pad="SAME_UPPER",
                         strides=[2, 2]),
        helper.make_node("Conv", ["c1", "W2"], ["c2"], name="conv_dilated", pads=[1, 1, 1, 1],
                         dilations=[2, 2]),
        helper.make_node("AveragePool", ["c2"], ["a"], name="pool", kernel_shape=[2, 2],
                         strides=[1, 1], pads=[1, 1, 0, 0], count_include_pad=1),
        helper.make_node("Neg", ["a"], ["n"], name="neg"),
        helper.make_node("Sub", ["n", "c2"], ["s"], name="sub"),
        helper.make_node("Flatten", ["s"], ["f"], name="flatten2", axis=2),
        helper.make_node("Unsqueeze", ["f", "ax1"], ["u"], name="unsqueeze"),
        helper.make_node("Squeeze", ["u", "ax1"], ["q"], name="squeeze"),
        helper.make_node("MatMul", ["q", "M"], ["mm"], name="matmul"),
        helper.make_node("Transpose", ["mm"], ["t"], name="transpose", perm=[0, 2, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["r"], name="reshape"),
        helper.make_node("LeakyRelu", ["r"], ["l"], name="leaky", alpha=0.2),
        helper.make_node("Gemm", ["l", "G", "C"], ["o"], name="gemm", alpha=0.5, beta=2.0),
    ]
    inits = [numpy_helper.from_array(t.detach().numpy(), k) for k, t in p.items()]
    inits += [ints("ax1", [1]), ints("shape", [-1, 20])]
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", D, ["N", 2, 6, 6])],
                              [helper.make_tensor_value_info("o", D, ["N", 3])], initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="gen_fixtures.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(HERE, "ops.onnx"))
    write_st(os.path.join(HERE, "ops.in.safetensors"), {"x": x, "y": y})
    o = model(x)
    ref = {"o": o.detach().clone()}
    loss = F.cross_entropy(o, y)
    loss.backward()
    ref["objective"] = loss.detach()
    for k, t in p.items():
        ref["grad." + k] = t.grad.clone()
    opt = torch.optim.SGD(p.values(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    for k, t in p.items():
        ref[k] = t.detach().clone()
    write_st(os.path.join(HERE, "ops.ref.safetensors"), ref)
    print("wrote ops (handmade) opset 13")


if __name__ == "__main__":
    for args in MODELS:
        export(*args)
    handmade()
