"""`tinydeploy inspect`: what the front end and passes make of a model."""
from __future__ import annotations

from . import frontend, ops, passes
from .errors import TinydeployError


def inspect_model(path: str, input_shapes=None) -> dict:
    """The model as compile sees it: after constant folding, either the unsupported
    nodes (with every remaining node, marked) or the compiled layers."""
    from . import frontend_tflite
    if frontend_tflite.is_tflite(path):  # TFLite operators in place of ONNX nodes
        nodes, opset, n_original = frontend_tflite.operators(path), None, None
    else:
        original = frontend.read_model(path)
        model, opset = frontend.folded_model(path, input_shapes)
        nodes = [dict(name=n.name or n.output[0], op_type=n.op_type, supported=frontend.is_supported(n))
                 for n in model.graph.node]
        n_original = len(original.graph.node)
    info = dict(model=path, opset=opset, nodes=n_original if opset else len(nodes), folded_nodes=len(nodes),
                unsupported=[n for n in nodes if not n["supported"]], layers=[], macs=0,
                parameter_bytes=0)
    if opset is None:
        info["format"] = "tflite"
    if info["unsupported"]:
        info["remaining_nodes"] = nodes
        return info
    g = frontend.load(path, input_shapes)
    prequantized = any(op.kind in ("quantize", "dequantize") for op in g.ops)
    if not prequantized:
        passes.optimize(g)
    info["int8_parameter_bytes"] = info["int4_parameter_bytes"] = 0
    for op in g.ops:
        params = sum(g.tensors[i].nbytes for i in op.inputs if i and g.tensors[i].is_const)
        shipped, shipped4 = int8_parameter_bytes(g, op), int8_parameter_bytes(g, op, int4=True)
        info["layers"].append(dict(name=op.name, op=op.kind,
                                   inputs=[list(g.tensors[i].shape) for i in op.inputs
                                           if i and not g.tensors[i].is_const],
                                   out_shape=list(g.tensors[op.outputs[0]].shape),
                                   parameter_bytes=params, int8_parameter_bytes=shipped,
                                   int4_parameter_bytes=shipped4,
                                   macs=ops.macs(g, op)))
        info["macs"] += ops.macs(g, op)
        info["parameter_bytes"] += params
        info["int8_parameter_bytes"] += shipped
        info["int4_parameter_bytes"] += shipped4
    info["layout"] = "as in the model (pre-quantized; shown before fusion)" if prequantized \
        else "NHWC after fusion"
    return info


WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")  # the kinds --weights int4 packs


def int8_parameter_bytes(g, op, int4: bool = False) -> int:
    """The op's constant inputs at the size an int8 build ships them: weights one byte per
    element (half a byte for INT4 weights of a QDQ model, or with int4=True, as
    --weights int4 ships convolution and fully connected weights), a convolution's or
    fully connected layer's bias (its third input) as int32, other constants (element-wise
    operands, tables) one byte per element.  Tensors that are already integer keep their
    size.  (Shown before fusion, a bias that a separate Add applies counts one byte per
    element.)  (The Arm DSP kernels' --optimize speed may store some weights as int16 on
    top: see the compile report's weights_bytes.)"""
    total = 0
    for k, name in enumerate(op.inputs):
        t = g.tensors[name] if name else None
        if t is None or not t.is_const:
            continue
        if (t.qdata is not None and t.qdata.dtype.name == "int4") or (int4 and k == 1 and op.kind in WEIGHTED):
            total += (t.size + 1) // 2
        elif t.dtype != "float32":
            total += t.nbytes
        elif k == 2 and op.kind in ("conv2d", "depthwise_conv2d", "fully_connected", "conv_transpose"):
            total += 4 * t.size
        else:
            total += t.size
    return total


def format_table(info: dict) -> str:
    tflite = info.get("format") == "tflite"
    lines = [f"{info['model']}: TensorFlow Lite, {info['nodes']} operators" if tflite else
             f"{info['model']}: opset {info['opset']}, {info['nodes']} ONNX nodes "
             f"({info['folded_nodes']} after constant folding)"]
    if info["unsupported"]:
        lines.append(f"{len(info['unsupported'])} unsupported {'operator' if tflite else 'node'}(s):")
        lines += [f"  - {n['name']}: {n['op_type']}" for n in info["unsupported"]]
        if tflite:
            from .frontend_tflite import LOWERINGS
            lines.append("supported TFLite operators: " + ", ".join(sorted(LOWERINGS)))
        else:
            lines.append("supported ops: " + ", ".join(sorted(frontend.LOWERINGS)))
        lines.append("the operators (x: unsupported):" if tflite else
                     "the nodes left after constant folding (x: unsupported):")
        lines += [f"  {' ' if n['supported'] else 'x'} {n['op_type']:<20} {n['name']}"
                  for n in info["remaining_nodes"]]
        return "\n".join(lines)
    lines.append(f"{'#':>3}  {'op':<16} {'output shape':<18} {'params B':>9} {'int8 B':>9} {'int4 B':>9} "
                 f"{'MACs':>11}  name")
    for i, l in enumerate(info["layers"]):
        lines.append(f"{i:>3}  {l['op']:<16} {str(tuple(l['out_shape'])):<18} "
                     f"{l['parameter_bytes']:>9,} {l['int8_parameter_bytes']:>9,} {l['int4_parameter_bytes']:>9,} "
                     f"{l['macs']:>11,}  {l['name']}")
    lines.append(f"total: {len(info['layers'])} layers ({info['layout']}), "
                 f"{info['macs']:,} MACs, {info['parameter_bytes']:,} parameter bytes as stored in the model, "
                 f"{info['int8_parameter_bytes']:,} as an int8 build ships them, "
                 f"{info['int4_parameter_bytes']:,} with --weights int4")
    return "\n".join(lines)


__all__ = ["inspect_model", "format_table", "TinydeployError"]
