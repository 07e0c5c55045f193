"""The convolutional architectures users bring (issue 14), at MCU sizes, built node for
node as PyTorch (eval mode, BatchNorm folded into the convolutions) and PaddlePaddle export
them: MobileNet V2 and V3, MnasNet, ShuffleNet V2, SqueezeNet, DS-CNN, a 1-D audio CNN, a
U-Net, a two-head detector, a two-input model, and PaddleOCR-style text classifier and
DB text detector. Weights are random with the scales of trained layers (He-normal, biases
small), so activations keep realistic ranges through the depth.

Each builder returns (model, {input name: shape without the batch}).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from model_gen import _Builder


class Net(_Builder):
    """model_gen's builder with the layers these architectures repeat."""

    def conv(self, x: str, c_in: int, c_out: int, k=3, stride=1, groups=1, act="relu", dilation=1) -> str:
        kh, kw = (k, k) if isinstance(k, int) else k
        fan_in = (c_in // groups) * kh * kw
        w = self.const("w", self.rng.normal(0, np.sqrt(2.0 / fan_in), (c_out, c_in // groups, kh, kw)))
        b = self.const("b", self.rng.normal(0, 0.1, c_out))
        ph, pw = (kh - 1) * dilation // 2, (kw - 1) * dilation // 2
        y = self.node("Conv", [x, w, b], kernel_shape=[kh, kw], strides=[stride, stride], group=groups,
                      dilations=[dilation, dilation], pads=[ph, pw, ph, pw])
        return self.act(y, act)

    def hardsigmoid(self, x: str) -> str:
        return self.node("HardSigmoid", [x], alpha=1 / 6, beta=0.5)

    def se(self, x: str, c: int, squeeze: int) -> str:
        """Squeeze-and-excitation as torchvision's MobileNetV3 exports it."""
        s = self.node("GlobalAveragePool", [x])
        s = self.conv(s, c, squeeze, 1, act="relu")
        s = self.hardsigmoid(self.conv(s, squeeze, c, 1, act="none"))
        return self.node("Mul", [x, s])

    def classifier(self, x: str, c: int, classes: int, softmax=False) -> str:
        x = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        x = self.gemm(x, c, classes)
        return self.node("Softmax", [x], axis=1) if softmax else x

    def gemm(self, x: str, n_in: int, n_out: int) -> str:
        w = self.const("fc", self.rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)))
        return self.node("Gemm", [x, w, self.const("fcb", self.rng.normal(0, 0.1, n_out))], transB=1)

    def model(self, inputs: dict, outputs: list, opset=13) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "net",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, *s]) for n, s in inputs.items()],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        del model.graph.value_info[:]
        onnx.checker.check_model(model, full_check=True)
        return model


def _inverted_residual(n: Net, x: str, c_in: int, c_out: int, expand: int, k: int, stride: int,
                       act="relu6", se=False) -> str:
    hidden = c_in * expand
    y = n.conv(x, c_in, hidden, 1, act=act) if expand != 1 else x
    y = n.conv(y, hidden, hidden, k, stride, groups=hidden, act=act)
    if se:
        y = n.se(y, hidden, max(8, hidden // 4))
    y = n.conv(y, hidden, c_out, 1, act="none")
    return n.node("Add", [x, y]) if stride == 1 and c_in == c_out else y


def mobilenet_v2():
    n = Net(1)
    x = n.conv("image", 3, 16, 3, 2, act="relu6")
    for c_in, c_out, expand, stride in ((16, 8, 1, 1), (8, 12, 6, 2), (12, 12, 6, 1), (12, 16, 6, 2),
                                        (16, 16, 6, 1)):
        x = _inverted_residual(n, x, c_in, c_out, expand, 3, stride)
    x = n.conv(x, 16, 64, 1, act="relu6")
    return n.model({"image": (3, 32, 32)}, [n.classifier(x, 64, 10)]), {"image": (3, 32, 32)}


def mobilenet_v3():
    """torchvision's MobileNetV3-Small pattern: HardSwish (decomposed, as PyTorch < 1.13 and
    PaddlePaddle export it), squeeze-and-excitation with HardSigmoid, a two-layer head."""
    n = Net(2)
    x = n.conv("image", 3, 16, 3, 2, act="hardswish")
    x = _inverted_residual(n, x, 16, 16, 1, 3, 2, act="relu", se=True)
    x = _inverted_residual(n, x, 16, 24, 4, 3, 2, act="relu")
    x = _inverted_residual(n, x, 24, 24, 3, 3, 1, act="relu")
    x = _inverted_residual(n, x, 24, 32, 4, 5, 2, act="hardswish", se=True)
    x = _inverted_residual(n, x, 32, 32, 3, 5, 1, act="hardswish", se=True)
    x = n.conv(x, 32, 96, 1, act="hardswish")
    x = n.node("Flatten", [n.node("GlobalAveragePool", [x])], axis=1)
    x = n.act(n.gemm(x, 96, 128), "hardswish")
    return n.model({"image": (3, 32, 32)}, [n.gemm(x, 128, 10)]), {"image": (3, 32, 32)}


def mnasnet():
    """MnasNet's mix of 3x3 and 5x5 depthwise inverted residuals with ReLU."""
    n = Net(3)
    x = n.conv("image", 3, 16, 3, 2)
    x = n.conv(x, 16, 16, 3, groups=16)
    x = n.conv(x, 16, 8, 1, act="none")
    for c_in, c_out, expand, k, stride in ((8, 12, 3, 3, 2), (12, 12, 3, 3, 1), (12, 20, 3, 5, 2),
                                           (20, 20, 3, 5, 1), (20, 32, 6, 5, 2)):
        x = _inverted_residual(n, x, c_in, c_out, expand, k, stride, act="relu")
    x = n.conv(x, 32, 64, 1)
    return n.model({"image": (3, 32, 32)}, [n.classifier(x, 64, 10)]), {"image": (3, 32, 32)}


def mnasnet_half(res: int = 96):
    """torchvision's MnasNet-0.5 layer for layer at res x res with 10 classes (about 0.94 M
    parameters: the issue's "MnasNet-0.5 class" model, int8 weights 930 KB)."""
    n = Net(5)
    x = n.conv("image", 3, 16, 3, 2)
    x = n.conv(x, 16, 16, 3, groups=16)
    x = n.conv(x, 16, 8, 1, act="none")
    c = 8
    for c_out, k, s, e, r in ((16, 3, 2, 3, 3), (24, 5, 2, 3, 3), (40, 5, 2, 6, 3), (48, 3, 1, 6, 2),
                              (96, 5, 2, 6, 4), (160, 3, 1, 6, 1)):
        for i in range(r):
            x = _inverted_residual(n, x, c, c_out, e, k, s if i == 0 else 1, act="relu")
            c = c_out
    x = n.conv(x, c, 1280, 1)
    return n.model({"image": (3, res, res)}, [n.classifier(x, 1280, 10)]), {"image": (3, res, res)}


def _channel_shuffle(n: Net, x: str, c: int, h: int, w: int) -> str:
    x = n.node("Reshape", [x, n.int_const("shape", [1, 2, c // 2, h, w])])
    x = n.node("Transpose", [x], perm=[0, 2, 1, 3, 4])
    return n.node("Reshape", [x, n.int_const("shape", [1, c, h, w])])


def shufflenet_v2():
    """ShuffleNet V2 units: a downsampling unit with two branches, then basic units whose
    channel Split keeps one half and convolves the other; channel shuffle by
    Reshape-Transpose-Reshape as torchvision exports it."""
    n = Net(4)
    x = n.conv("image", 3, 12, 3, 2)
    x = n.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # 8x8
    c, half = 24, 12
    left = n.conv(n.conv(x, 12, 12, 3, 2, groups=12, act="none"), 12, half, 1)
    right = n.conv(x, 12, half, 1)
    right = n.conv(n.conv(right, half, half, 3, 2, groups=half, act="none"), half, half, 1)
    x = _channel_shuffle(n, n.node("Concat", [left, right], axis=1), c, 4, 4)
    for _ in range(2):
        keep, work = n.name("split_a"), n.name("split_b")
        n.nodes.append(helper.make_node("Split", [x, n.int_const("split", [half, half])], [keep, work], axis=1,
                                        name=keep))
        work = n.conv(n.conv(n.conv(work, half, half, 1), half, half, 3, groups=half, act="none"), half, half, 1)
        x = _channel_shuffle(n, n.node("Concat", [keep, work], axis=1), c, 4, 4)
    x = n.conv(x, c, 64, 1)
    return n.model({"image": (3, 32, 32)}, [n.classifier(x, 64, 10)]), {"image": (3, 32, 32)}


def squeezenet():
    """SqueezeNet 1.1: fire modules (squeeze 1x1, expand 1x1 and 3x3, concat), MaxPool with
    ceil_mode, a convolutional classifier and global pooling."""
    n = Net(5)
    x = n.conv("image", 3, 16, 3, 2)
    x = n.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    c = 16
    for squeeze, expand in ((8, 16), (8, 16), (12, 24)):
        s = n.conv(x, c, squeeze, 1)
        x = n.node("Concat", [n.conv(s, squeeze, expand, 1), n.conv(s, squeeze, expand, 3)], axis=1)
        c = 2 * expand
    x = n.conv(x, c, 10, 1)
    x = n.node("Flatten", [n.node("GlobalAveragePool", [x])], axis=1)
    return n.model({"image": (3, 32, 32)}, [x]), {"image": (3, 32, 32)}


def ds_cnn():
    """DS-CNN keyword spotting (MFCC 49x10): a strided 10x4 conv, depthwise-separable blocks."""
    n = Net(6)
    x = n.conv("mfcc", 1, 32, (10, 4), 2)
    for _ in range(3):
        x = n.conv(n.conv(x, 32, 32, 3, groups=32), 32, 32, 1)
    x = n.node("AveragePool", [x], kernel_shape=[24, 5])
    x = n.gemm(n.node("Flatten", [x], axis=1), 32, 12)
    return n.model({"mfcc": (1, 49, 10)}, [n.node("Softmax", [x], axis=1)]), {"mfcc": (1, 49, 10)}


def audio_cnn_1d():
    """A raw-audio / vibration 1-D CNN: Conv1d, BatchNorm folded, MaxPool1d, dilated Conv1d,
    AdaptiveAvgPool1d(1), Linear."""
    n = Net(7)
    w = lambda c_out, c_in, k: n.const("w", n.rng.normal(0, np.sqrt(2.0 / (c_in * k)), (c_out, c_in, k)))  # noqa: E731
    b = lambda c: n.const("b", n.rng.normal(0, 0.1, c))  # noqa: E731
    x = n.node("Relu", [n.node("Conv", ["signal", w(8, 1, 9), b(8)], kernel_shape=[9], strides=[4], pads=[4, 4])])
    x = n.node("MaxPool", [x], kernel_shape=[2], strides=[2])
    x = n.node("Relu", [n.node("Conv", [x, w(16, 8, 5), b(16)], kernel_shape=[5], pads=[4, 4], dilations=[2])])
    x = n.node("Relu", [n.node("Conv", [x, w(16, 16, 3), b(16)], kernel_shape=[3], strides=[2], pads=[1, 1])])
    x = n.node("Flatten", [n.node("GlobalAveragePool", [x])], axis=1)
    return n.model({"signal": (1, 256)}, [n.gemm(x, 16, 4)]), {"signal": (1, 256)}


def unet():
    """A two-level U-Net: ConvTranspose up-sampling on one level, nearest Resize on the other,
    skip connections by Concat, a per-pixel 3-class map."""
    n = Net(8)
    e1 = n.conv(n.conv("image", 3, 8, 3), 8, 8, 3)                                    # 24x24
    e2 = n.conv(n.node("MaxPool", [e1], kernel_shape=[2, 2], strides=[2, 2]), 8, 16, 3)   # 12x12
    mid = n.conv(n.node("MaxPool", [e2], kernel_shape=[2, 2], strides=[2, 2]), 16, 24, 3)  # 6x6
    wt = n.const("wt", n.rng.normal(0, np.sqrt(2.0 / (24 * 4)), (24, 16, 2, 2)))
    up2 = n.node("ConvTranspose", [mid, wt, n.const("bt", n.rng.normal(0, 0.1, 16))], kernel_shape=[2, 2],
                 strides=[2, 2])
    d2 = n.conv(n.node("Concat", [up2, e2], axis=1), 32, 16, 3)
    scales = n.const("scales", np.array([1, 1, 2, 2], np.float32))
    up1 = n.node("Resize", [d2, "", scales], mode="nearest")
    d1 = n.conv(n.node("Concat", [up1, e1], axis=1), 24, 8, 3)
    return n.model({"image": (3, 24, 24)}, [n.conv(d1, 8, 3, 1, act="none")]), {"image": (3, 24, 24)}


def detector():
    """A two-head single-shot detector: a shared backbone, class scores (sigmoid) and box
    offsets per cell of an 8x8 grid, two outputs."""
    n = Net(9)
    x = n.conv("image", 3, 16, 3, 2)
    x = _inverted_residual(n, x, 16, 24, 4, 3, 2)
    x = _inverted_residual(n, x, 24, 24, 4, 3, 1)
    scores = n.node("Sigmoid", [n.conv(x, 24, 3, 1, act="none")])
    boxes = n.conv(n.conv(x, 24, 24, 3, groups=24), 24, 4, 1, act="none")
    return n.model({"image": (3, 32, 32)}, [scores, boxes]), {"image": (3, 32, 32)}


def two_inputs():
    """Sensor fusion: an image branch and an IMU-window branch joined before the classifier."""
    n = Net(10)
    img = n.node("Flatten", [n.node("GlobalAveragePool", [n.conv(n.conv("image", 1, 8, 3, 2), 8, 16, 3, 2)])],
                 axis=1)
    imu = n.node("Relu", [n.gemm(n.node("Flatten", ["imu"], axis=1), 6 * 20, 16)])
    x = n.node("Relu", [n.gemm(n.node("Concat", [img, imu], axis=1), 32, 24)])
    return n.model({"image": (1, 16, 16), "imu": (6, 20)}, [n.gemm(x, 24, 5)]), {"image": (1, 16, 16),
                                                                                "imu": (6, 20)}


def ocr_classifier():
    """PaddleOCR's text-direction classifier pattern (MobileNetV3 with HardSwish written as
    x * relu6(x + 3) / 6, a 48x192 line crop scaled down), two classes, softmax."""
    n = Net(11)
    x = n.conv("crop", 3, 8, 3, 2, act="hardswish")
    x = _inverted_residual(n, x, 8, 8, 1, 3, 1, act="relu", se=True)
    x = _inverted_residual(n, x, 8, 16, 4, 3, 2, act="relu")
    x = _inverted_residual(n, x, 16, 24, 3, 5, 2, act="hardswish", se=True)
    x = n.conv(x, 24, 48, 1, act="hardswish")
    x = n.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    return n.model({"crop": (3, 24, 96)}, [n.classifier(x, 48, 2, softmax=True)]), {"crop": (3, 24, 96)}


def db_detector():
    """PaddleOCR's DB text detector pattern: a strided backbone, an FPN neck that adds
    nearest-upsampled (Resize) maps, and a head that upsamples twice with ConvTranspose to a
    sigmoid probability map."""
    n = Net(12)
    c2 = n.conv(n.conv("image", 3, 8, 3, 2), 8, 8, 3)          # 16x16
    c3 = n.conv(c2, 8, 16, 3, 2)                              # 8x8
    c4 = n.conv(c3, 16, 24, 3, 2)                             # 4x4
    scales = n.const("scales", np.array([1, 1, 2, 2], np.float32))
    p4 = n.conv(c4, 24, 8, 1, act="none")
    p3 = n.node("Add", [n.conv(c3, 16, 8, 1, act="none"), n.node("Resize", [p4, "", scales], mode="nearest")])
    p2 = n.node("Add", [n.conv(c2, 8, 8, 1, act="none"), n.node("Resize", [p3, "", scales], mode="nearest")])
    x = n.conv(p2, 8, 4, 3)
    for c_in, c_out in ((4, 4), (4, 1)):
        wt = n.const("wt", n.rng.normal(0, np.sqrt(2.0 / (c_in * 4)), (c_in, c_out, 2, 2)))
        x = n.node("ConvTranspose", [x, wt, n.const("bt", n.rng.normal(0, 0.1, c_out))], kernel_shape=[2, 2],
                   strides=[2, 2])
        if c_out != 1:
            x = n.node("Relu", [x])
    return n.model({"image": (3, 32, 32)}, [n.node("Sigmoid", [x])]), {"image": (3, 32, 32)}


ARCHITECTURES = {fn.__name__: fn for fn in (
    mobilenet_v2, mobilenet_v3, mnasnet, shufflenet_v2, squeezenet, ds_cnn, audio_cnn_1d, unet, detector,
    two_inputs, ocr_classifier, db_detector)}
