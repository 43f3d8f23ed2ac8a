#!/usr/bin/python3
"""gen_bad.py: the broken and unsupported ONNX files of tests/t_onnx.sh.

A development tool, run once by hand after gen_fixtures.py (Debian:
python3-torch, python3-onnx); writes tests/onnx/bad/NAME.onnx.  Each file's
expected message is tests/onnx/bad/NAME.err (written by hand from gradc's
output and reviewed), and tests/onnx/names.onnx, a model whose names need
SPEC 4's sanitizing.
"""
import os

import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "bad")


def save(name, model):
    onnx.save(model, os.path.join(BAD, name + ".onnx"))


def tiny(nodes, inits=(), inputs=None, opset=13, out_shape=("N", 3), out="o"):
    """A model around 'nodes' reading x [N, 3] and writing o."""
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])]
    g = helper.make_graph(nodes, "g", inputs,
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))],
                          initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="gen_bad.py")
    m.ir_version = 7
    return m


def w(name, dims, dtype=TensorProto.FLOAT):
    n = 1
    for d in dims:
        n *= d
    return helper.make_tensor(name, dtype, dims, [0.5] * n if dtype == TensorProto.FLOAT else [1] * n)


def torch_export(name, fn, shape, **kw):
    class M(torch.nn.Module):
        def forward(self, x):
            return fn(x)
    torch.onnx.export(M(), torch.randn(*shape), os.path.join(BAD, name + ".onnx"),
                      input_names=["x"], output_names=["o"],
                      dynamic_axes={"x": {0: "N"}, "o": {0: "N"}}, **kw)


def main():
    os.makedirs(BAD, exist_ok=True)
    dense = open(os.path.join(HERE, "dense.onnx"), "rb").read()
    open(os.path.join(BAD, "truncated.onnx"), "wb").write(dense[: len(dense) // 2])
    open(os.path.join(BAD, "empty.onnx"), "wb").write(b"")
    open(os.path.join(BAD, "text.onnx"), "wb").write(b"this is not a model\n")
    # a field of wire type 3 (a group), and a varint of 11 bytes
    open(os.path.join(BAD, "group.onnx"), "wb").write(bytes([0x0B, 0x08, 0x01, 0x0C]))
    open(os.path.join(BAD, "varint.onnx"), "wb").write(bytes([0x08] + [0xFF] * 10 + [0x01]))
    # a length that runs past the end of the graph
    open(os.path.join(BAD, "length.onnx"), "wb").write(bytes([0x3A, 0x7F, 0x0A, 0x02]))

    m = onnx.load(os.path.join(HERE, "dense.onnx"))
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "weights.bin"
    onnx.save(m, os.path.join(BAD, "external.onnx"))

    save("unsupported_op", tiny([helper.make_node("Erf", ["x"], ["o"], name="erf1")]))
    save("unsupported_attr", tiny([helper.make_node("Relu", ["x"], ["o"], name="r", foo=1)]))
    save("opset9", tiny([helper.make_node("Relu", ["x"], ["o"], name="r")], opset=9))
    save("domain", tiny([helper.make_node("Gelu", ["x"], ["o"], name="g", domain="com.microsoft")]))
    save("dynamic_dim", tiny([helper.make_node("Relu", ["x"], ["o"], name="r")], inputs=[
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "K"])]))
    save("int_input", tiny([helper.make_node("Relu", ["x"], ["o"], name="r")], inputs=[
        helper.make_tensor_value_info("x", TensorProto.INT64, ["N", 3])]))
    save("int8_weight", tiny([helper.make_node("MatMul", ["x", "w"], ["o"], name="mm")],
                             inits=[w("w", [3, 3], TensorProto.INT8)]))
    save("int_weight", tiny([helper.make_node("MatMul", ["x", "w"], ["o"], name="mm")],
                            inits=[w("w", [3, 3], TensorProto.INT64)]))
    save("cast_int", tiny([helper.make_node("Cast", ["x"], ["o"], name="c", to=TensorProto.INT64)]))
    save("gemm_transA", tiny([helper.make_node("Gemm", ["x", "w"], ["o"], name="fc", transA=1)],
                             inits=[w("w", [3, 3])]))
    save("batch_weight", tiny([helper.make_node("Add", ["x", "w"], ["o"], name="add")],
                              inits=[w("w", [2, 3])]))
    save("no_output", tiny([helper.make_node("Relu", ["x"], ["h"], name="r")]))

    torch_export("ceil_mode", lambda x: F.max_pool2d(x, 2, ceil_mode=True), (1, 1, 5, 5),
                 opset_version=13)
    torch_export("softmax_axis", lambda x: torch.softmax(x, 1), (1, 3, 4), opset_version=13)
    torch_export("reshape_batch", lambda x: x.reshape(-1), (2, 3), opset_version=13)
    torch_export("pad_maxpool", lambda x: F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 2), (1, 1, 4, 4),
                 opset_version=13)
    torch_export("transpose_batch", lambda x: x.t(), (2, 3), opset_version=13)
    torch_export("conv1d", lambda x: F.conv1d(x, torch.ones(2, 1, 3)), (1, 1, 6),
                 opset_version=13)

    # names that need SPEC 4's rules: a leading digit, characters outside
    # [A-Za-z0-9_], a keyword of the language, two names that meet
    nodes = [helper.make_node("Gemm", ["x", "0.weight", "relu"], ["h.1"], name="fc0", transB=1),
             helper.make_node("Gemm", ["h.1", "a.b", "a_b"], ["h_1"], name="fc1", transB=1),
             helper.make_node("Relu", ["h_1"], ["model"], name="act")]
    inits = [w("0.weight", [4, 3]), w("relu", [4]), w("a.b", [3, 4]), w("a_b", [3])]
    onnx.save(tiny(nodes, inits, out_shape=("N", 3), out="model"), os.path.join(HERE, "names.onnx"))
    print("wrote", len(os.listdir(BAD)), "files into", BAD)


if __name__ == "__main__":
    main()
