#!/usr/bin/env python3
"""Train the bundled tinydeploy example model: a small CNN on sklearn's 8x8 digits.

Everything is plain numpy (forward, backward, optimiser); the only dependencies are
numpy, scikit-learn (for the data set, which ships inside the package), onnx and
onnxruntime (to export and verify).  Running it rewrites, next to this file:

  digits_cnn.onnx  opset 13, input "input" float32 [1,1,8,8] (NCHW),
                   output "probs" float32 [1,10] (softmax probabilities)
  test.npz         held-out split: "input" float32 [N,1,8,8], "label" int64 [N]
  calib.npz        training split, same layout (int8 calibration data)

Network (the exported graph, node for node):
  Conv(1->8, 3x3, pad 1, no bias) -> BatchNormalization -> Relu -> MaxPool 2x2
  -> Conv(8->16, 3x3, pad 1) -> Relu -> MaxPool 2x2 -> Flatten
  -> Gemm(64->32) -> Relu -> Gemm(32->10) -> Softmax

The batch norm is trained for real (batch statistics during training); its running
statistics are then recomputed exactly over the whole training set, so the exported
BatchNormalization node has non-trivial scale, bias, mean and variance.

Usage:  python examples/digits/train.py  [--out-dir DIR]
"""
import os

# One thread for BLAS: keeps training on a single core and the arithmetic order fixed,
# so reruns on the same machine reproduce the same weights bit for bit.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import io
import time
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
EPOCHS = 40
BATCH = 32
LR = 3e-3
WEIGHT_DECAY = 1e-3  # L2 on weights (not on biases / BN params)
BN_EPS = 1e-5
OPSET = 13
IR_VERSION = 7  # the IR version that goes with opset 13; widest reader compatibility


# ----------------------------------------------------------------------------- data
def load_data():
    digits = load_digits()
    x = (digits.images.astype(np.float64) / 16.0).reshape(-1, 1, 8, 8)  # [0,1]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y)
    return x_tr, x_te, y_tr, y_te


# ------------------------------------------------------------------ numpy layers
def im2col3(x):
    """[N,C,H,W] -> [N,C,3,3,H,W] patches of a 3x3, stride 1, pad 1 convolution."""
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + 2, w + 2), dtype=x.dtype)
    xp[:, :, 1:-1, 1:-1] = x
    cols = np.empty((n, c, 3, 3, h, w), dtype=x.dtype)
    for i in range(3):
        for j in range(3):
            cols[:, :, i, j] = xp[:, :, i:i + h, j:j + w]
    return cols


def col2im3(dcols):
    """Adjoint of im2col3: [N,C,3,3,H,W] -> [N,C,H,W]."""
    n, c, _, _, h, w = dcols.shape
    dxp = np.zeros((n, c, h + 2, w + 2), dtype=dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + w] += dcols[:, :, i, j]
    return dxp[:, :, 1:-1, 1:-1]


def conv3_fwd(x, w, b=None):
    cols = im2col3(x)
    out = np.tensordot(cols, w, axes=([1, 2, 3], [1, 2, 3]))  # [N,H,W,O]
    out = out.transpose(0, 3, 1, 2)
    if b is not None:
        out = out + b[None, :, None, None]
    return np.ascontiguousarray(out), cols


def conv3_bwd(dout, cols, w):
    dw = np.tensordot(dout, cols, axes=([0, 2, 3], [0, 4, 5]))  # [O,C,3,3]
    db = dout.sum(axis=(0, 2, 3))
    dcols = np.tensordot(w, dout, axes=([0], [1]))  # [C,3,3,N,H,W]
    dx = col2im3(dcols.transpose(3, 0, 1, 2, 4, 5))
    return dx, dw, db


def maxpool2_fwd(x):
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(n, c, h // 2, w // 2, 4)
    idx = win.argmax(axis=-1)
    out = np.take_along_axis(win, idx[..., None], axis=-1)[..., 0]
    return out, idx


def maxpool2_bwd(dout, idx):
    n, c, h2, w2 = dout.shape
    dwin = np.zeros((n, c, h2, w2, 4), dtype=dout.dtype)
    np.put_along_axis(dwin, idx[..., None], dout[..., None], axis=-1)
    dwin = dwin.reshape(n, c, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    return dwin.reshape(n, c, h2 * 2, w2 * 2)


def bn_train_fwd(x, gamma, beta):
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    inv = 1.0 / np.sqrt(var + BN_EPS)
    xhat = (x - mean[None, :, None, None]) * inv[None, :, None, None]
    out = gamma[None, :, None, None] * xhat + beta[None, :, None, None]
    return out, (xhat, inv)


def bn_train_bwd(dout, cache, gamma):
    xhat, inv = cache
    m = dout.shape[0] * dout.shape[2] * dout.shape[3]
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dxhat = dout * gamma[None, :, None, None]
    dx = (inv[None, :, None, None] / m) * (
        m * dxhat
        - dxhat.sum(axis=(0, 2, 3))[None, :, None, None]
        - xhat * (dxhat * xhat).sum(axis=(0, 2, 3))[None, :, None, None])
    return dx, dgamma, dbeta


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------ model
def init_params(rng):
    def he(shape, fan_in):
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    return {
        "conv1.weight": he((8, 1, 3, 3), 9),
        "bn1.scale": np.ones(8),
        "bn1.bias": np.zeros(8),
        "conv2.weight": he((16, 8, 3, 3), 72),
        "conv2.bias": np.zeros(16),
        "fc1.weight": he((32, 64), 64),  # Gemm B with transB=1: [out, in]
        "fc1.bias": np.zeros(32),
        "fc2.weight": he((10, 32), 32) * 0.5,
        "fc2.bias": np.zeros(10),
    }


def forward_train(p, x):
    """Training-mode forward (batch-statistics BN). Returns logits and a cache."""
    c1, cols1 = conv3_fwd(x, p["conv1.weight"])
    b1, bn_cache = bn_train_fwd(c1, p["bn1.scale"], p["bn1.bias"])
    r1 = np.maximum(b1, 0.0)
    m1, idx1 = maxpool2_fwd(r1)
    c2, cols2 = conv3_fwd(m1, p["conv2.weight"], p["conv2.bias"])
    r2 = np.maximum(c2, 0.0)
    m2, idx2 = maxpool2_fwd(r2)
    f = m2.reshape(len(x), -1)  # ONNX Flatten(axis=1) of NCHW: (C,H,W) order
    h = f @ p["fc1.weight"].T + p["fc1.bias"]
    r3 = np.maximum(h, 0.0)
    logits = r3 @ p["fc2.weight"].T + p["fc2.bias"]
    cache = (cols1, bn_cache, b1, idx1, cols2, c2, idx2, m2.shape, f, h, r3)
    return logits, cache


def backward(p, cache, dlogits):
    cols1, bn_cache, b1, idx1, cols2, c2, idx2, m2_shape, f, h, r3 = cache
    g = {}
    g["fc2.weight"] = dlogits.T @ r3
    g["fc2.bias"] = dlogits.sum(axis=0)
    dh = (dlogits @ p["fc2.weight"]) * (h > 0)
    g["fc1.weight"] = dh.T @ f
    g["fc1.bias"] = dh.sum(axis=0)
    dm2 = (dh @ p["fc1.weight"]).reshape(m2_shape)
    dc2 = maxpool2_bwd(dm2, idx2) * (c2 > 0)
    dm1, g["conv2.weight"], g["conv2.bias"] = conv3_bwd(dc2, cols2, p["conv2.weight"])
    db1 = maxpool2_bwd(dm1, idx1) * (b1 > 0)
    dc1, g["bn1.scale"], g["bn1.bias"] = bn_train_bwd(db1, bn_cache, p["bn1.scale"])
    _, g["conv1.weight"], _ = conv3_bwd(dc1, cols1, p["conv1.weight"])
    return g


def forward_eval(p, x):
    """Inference forward exactly as the exported graph computes it; returns probs."""
    c1, _ = conv3_fwd(x, p["conv1.weight"])
    s = p["bn1.scale"] / np.sqrt(p["bn1.var"] + BN_EPS)
    b1 = (c1 - p["bn1.mean"][None, :, None, None]) * s[None, :, None, None] \
        + p["bn1.bias"][None, :, None, None]
    m1, _ = maxpool2_fwd(np.maximum(b1, 0.0))
    c2, _ = conv3_fwd(m1, p["conv2.weight"], p["conv2.bias"])
    m2, _ = maxpool2_fwd(np.maximum(c2, 0.0))
    f = m2.reshape(len(x), -1)
    r3 = np.maximum(f @ p["fc1.weight"].T + p["fc1.bias"], 0.0)
    return softmax(r3 @ p["fc2.weight"].T + p["fc2.bias"])


def train(x_tr, y_tr, rng):
    p = init_params(rng)
    decay = {k for k in p if k.endswith("weight")}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = len(x_tr)
    steps_per_epoch = (n + BATCH - 1) // BATCH
    total = EPOCHS * steps_per_epoch
    t = 0
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        loss_sum = 0.0
        correct = 0
        for s in range(0, n, BATCH):
            bi = order[s:s + BATCH]
            xb, yb = x_tr[bi], y_tr[bi]
            logits, cache = forward_train(p, xb)
            probs = softmax(logits)
            loss_sum += -np.log(probs[np.arange(len(bi)), yb] + 1e-12).sum()
            correct += int((probs.argmax(axis=1) == yb).sum())
            dlogits = probs
            dlogits[np.arange(len(bi)), yb] -= 1.0
            dlogits /= len(bi)
            grads = backward(p, cache, dlogits)
            t += 1
            lr = LR * 0.5 * (1.0 + np.cos(np.pi * (t - 1) / total))  # cosine decay
            for k in p:
                gk = grads[k] + (WEIGHT_DECAY * p[k] if k in decay else 0.0)
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mhat = m[k] / (1 - b1 ** t)
                vhat = v[k] / (1 - b2 ** t)
                p[k] = p[k] - lr * mhat / (np.sqrt(vhat) + eps)
        if epoch % 5 == 4 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:3d}  loss {loss_sum / n:.4f}  "
                  f"train acc (batch-stat BN) {correct / n:.4f}")
    # Exact population statistics for inference-mode BN, over the whole training set.
    c1, _ = conv3_fwd(x_tr, p["conv1.weight"])
    p["bn1.mean"] = c1.mean(axis=(0, 2, 3))
    p["bn1.var"] = c1.var(axis=(0, 2, 3))
    return p


# ------------------------------------------------------------------------- export
def build_onnx(p):
    inits = [numpy_helper.from_array(np.asarray(p[k], dtype=np.float32), name=k)
             for k in ("conv1.weight", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var",
                       "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                       "fc2.weight", "fc2.bias")]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1],
                group=1)
    pool = dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight"], ["conv1"], name="conv1", **conv),
        helper.make_node("BatchNormalization",
                         ["conv1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"],
                         ["bn1"], name="bn1", epsilon=BN_EPS, momentum=0.9),
        helper.make_node("Relu", ["bn1"], ["relu1"], name="relu1"),
        helper.make_node("MaxPool", ["relu1"], ["pool1"], name="pool1", **pool),
        helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"],
                         name="conv2", **conv),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool2"], name="pool2", **pool),
        helper.make_node("Flatten", ["pool2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], name="fc1",
                         alpha=1.0, beta=1.0, transA=0, transB=1),
        helper.make_node("Relu", ["fc1"], ["relu3"], name="relu3"),
        helper.make_node("Gemm", ["relu3", "fc2.weight", "fc2.bias"], ["logits"],
                         name="fc2", alpha=1.0, beta=1.0, transA=0, transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
        outputs=[helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="tinydeploy-examples-digits", producer_version="1",
        doc_string="Small CNN on sklearn 8x8 digits; input pixels scaled to [0,1] "
                   "(x/16), NCHW [1,1,8,8]; output softmax probabilities [1,10].")
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def save_npz(path, **arrays):
    """np.savez-compatible archive with fixed zip timestamps (byte-reproducible)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def ort_probs(model_path, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["probs"]
    return np.concatenate([sess.run(["probs"], {"input": x[i:i + 1]})[0]
                           for i in range(len(x))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    t0 = time.time()
    x_tr, x_te, y_tr, y_te = load_data()
    print(f"train/calib samples: {len(x_tr)}   test samples: {len(x_te)}")
    rng = np.random.default_rng(SEED)
    p = train(x_tr, y_tr, rng)
    print(f"training took {time.time() - t0:.1f} s")

    # Round parameters to float32 and evaluate the numpy model in float32, as exported.
    p32 = {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}
    x_te32 = x_te.astype(np.float32)
    np_pred = forward_eval(p32, x_te32).argmax(axis=1)
    np_acc = float((np_pred == y_te).mean())

    model = build_onnx(p)
    onnx_path = os.path.join(args.out_dir, "digits_cnn.onnx")
    onnx.save_model(model, onnx_path)
    onnx.checker.check_model(onnx_path, full_check=True)  # the file as written

    save_npz(os.path.join(args.out_dir, "test.npz"),
             input=x_te32, label=y_te.astype(np.int64))
    save_npz(os.path.join(args.out_dir, "calib.npz"),
             input=x_tr.astype(np.float32), label=y_tr.astype(np.int64))

    probs = ort_probs(onnx_path, x_te32)
    ort_pred = probs.argmax(axis=1)
    ort_acc = float((ort_pred == y_te).mean())
    max_diff = float(np.abs(probs - forward_eval(p32, x_te32)).max())
    print(f"BN params: scale {np.round(p32['bn1.scale'], 3)}")
    print(f"           bias  {np.round(p32['bn1.bias'], 3)}")
    print(f"           mean  {np.round(p32['bn1.mean'], 3)}")
    print(f"           var   {np.round(p32['bn1.var'], 3)}")
    print(f"numpy float32 accuracy on held-out split: {np_acc:.4f}")
    print(f"onnxruntime accuracy on held-out split:   {ort_acc:.4f} "
          f"({int((ort_pred == y_te).sum())}/{len(y_te)}), "
          f"max |prob diff| vs numpy {max_diff:.2e}")
    assert np.array_equal(np_pred, ort_pred), "onnxruntime and numpy predictions differ"
    assert ort_acc >= 0.96, f"accuracy {ort_acc:.4f} below 0.96"
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes), test.npz, calib.npz "
          f"in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
