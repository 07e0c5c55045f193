"""Issue 14's architectures end to end (tests/cnn_architectures.py): float32 against
onnxruntime (1e-4 relative), int8 with --calib no worse than 3 dB below onnxruntime's own
static int8 quantizer (QDQ, per-channel weights, MinMax calibration) on the same data, and
int8 C == golden model bit for bit on an emulated Arm and an emulated RISC-V core."""
import zlib

import numpy as np
import onnx
import pytest

import cnn_architectures as arch

from tinydeploy import api

ort = pytest.importorskip("onnxruntime")
NAMES = sorted(arch.ARCHITECTURES)
# every architecture on one Arm and one RISC-V core, the cores rotating over the list
CORES = [(name, ("nucleo-l4r5zi", "cortex-m55", "stm32f746")[i % 3], ("rv32-zve32x", "esp32-c3")[i % 2])
         for i, name in enumerate(NAMES)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (path, calibration feeds, evaluation feeds); inputs in 0..1 for images, as
    preprocessed pixels, else normal."""
    tmp, out = tmp_path_factory.mktemp("arch"), {}
    for name in NAMES:
        model, inputs = arch.ARCHITECTURES[name]()
        path = str(tmp / f"{name}.onnx")
        onnx.save(model, path)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        draw = lambda n, s, k: (rng.uniform(0, 1, (n, *s)) if k in ("image", "crop") else  # noqa: E731
                                rng.normal(0, 1, (n, *s))).astype(np.float32)
        out[name] = (path, {k: draw(32, s, k) for k, s in inputs.items()}, {k: draw(8, s, k) for k, s in inputs.items()})
    return out


def _ort(path: str, feeds: dict) -> list:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    n = len(next(iter(feeds.values())))
    runs = [sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
    return [np.concatenate([r[j] for r in runs]) for j in range(len(runs[0]))]


def _ordered(path: str, outputs: dict) -> list:
    return [outputs[o.name] for o in onnx.load(path).graph.output]


def _sqnr_db(ref: list, got: list) -> float:
    ref = np.concatenate([r.astype(np.float64).ravel() for r in ref])
    got = np.concatenate([g.astype(np.float64).ravel() for g in got])
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))


def _ort_int8(path: str, calib: dict, tmp) -> str:
    from onnxruntime import quantization as oq

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            n = len(next(iter(calib.values())))
            self.samples = iter([{k: v[i:i + 1] for k, v in calib.items()} for i in range(n)])

        def get_next(self):
            return next(self.samples, None)

    qpath = str(tmp / "ort_int8.onnx")
    oq.quantize_static(path, qpath, Reader(), quant_format=oq.QuantFormat.QDQ, per_channel=True,
                       activation_type=oq.QuantType.QInt8, weight_type=oq.QuantType.QInt8,
                       calibrate_method=oq.CalibrationMethod.MinMax)
    return qpath


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_onnxruntime(models, name):
    path, _, x = models[name]
    got = _ordered(path, api.run(path, x, target="host", quantize="float32").outputs)
    for g, want in zip(got, _ort(path, x)):
        np.testing.assert_allclose(g.reshape(want.shape), want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("name", NAMES)
def test_int8_within_3db_of_onnxruntime_quantizer(models, name, tmp_path):
    path, calib, x = models[name]
    ref = _ort(path, x)
    ours = [o.reshape(r.shape) for o, r in zip(_ordered(path, api.run(path, x, target="host", calib=calib).outputs),
                                               ref)]
    theirs = _ort(_ort_int8(path, calib, tmp_path), x)
    print(f"{name}: tinydeploy {_sqnr_db(ref, ours):.1f} dB, onnxruntime {_sqnr_db(ref, theirs):.1f} dB")
    assert _sqnr_db(ref, ours) >= _sqnr_db(ref, theirs) - 3.0, (_sqnr_db(ref, ours), _sqnr_db(ref, theirs))


@pytest.mark.parametrize("name,arm,riscv", CORES)
def test_int8_bit_exact_on_emulated_arm_and_riscv(models, name, arm, riscv):
    path, calib, x = models[name]
    x = {k: v[:2] for k, v in x.items()}
    for target in (arm, riscv):
        c = api.run(path, x, target=target, calib=calib).outputs
        golden = api.run(path, x, target=target, calib=calib, golden=True).outputs
        for out in c:
            np.testing.assert_array_equal(c[out], golden[out], err_msg=f"{name} on {target}: {out}")
