"""User data: samples from .npz files (or {name: array} dicts), checked against the
model's input, calibration data, labels, and the conversions between user arrays
and what the generated library takes and returns.

Below the API and the services (quantize, the emulated runs): every module that
reads user data reads it through here, so the checks and their messages are the
same everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .errors import TinydeployError
from .ir import Graph

LABELS = "label"  # the array of an inputs file that holds labels (for accuracy): the first output's
LABELS_OF = "label:"  # "label:NAME": the labels of output NAME (models with several outputs)


def is_labels(key: str) -> bool:
    """Is this array of an inputs file labels rather than input data?"""
    return key == LABELS or key.startswith(LABELS_OF)


def split_array_choice(path) -> tuple[Path, Optional[str]]:
    """FILE.npz:ARRAY -> (FILE.npz, ARRAY): one array of a file that holds several (e.g. the
    float inputs of a reference file); a plain path -> (path, None)."""
    text = str(path)
    if not Path(text).exists() and ":" in text:
        file, _, key = text.rpartition(":")
        if key and Path(file).suffix.lower() == ".npz":
            return Path(file), key
    return Path(text), None


def read_npz(path, what: str = "inputs") -> dict:
    """The arrays of an .npz file, {name: array}; FILE.npz:ARRAY reads that one array (with
    the file's 'label' array, if any)."""
    path, key = split_array_choice(path)
    if not path.exists():
        raise TinydeployError(f"{what} file not found: {path}")
    if path.is_dir():
        raise TinydeployError(f"{what} file {path} is a directory; give an .npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:
        raise TinydeployError(f"{path} is not a NumPy .npz file") from None
    if not arrays:
        raise TinydeployError(f"{what} file {path} is empty")
    if key is not None:
        if key not in arrays:
            raise TinydeployError(f"{what} file {path} has no array '{key}'; it has {sorted(arrays)}")
        arrays = {key: arrays[key], **{k: v for k, v in arrays.items() if is_labels(k)}}
    return arrays


def _arrays(path_or_arrays, what: str) -> dict:
    """{name: array} from an .npz file (FILE.npz:ARRAY for one of its arrays) or a dict."""
    if isinstance(path_or_arrays, (str, Path)):
        return read_npz(path_or_arrays, what)
    return dict(path_or_arrays)


def sample_shape(shape) -> tuple:
    """A tensor's shape without its batch dimension of 1 (the shape of one sample)."""
    return tuple(shape[1:]) if shape and shape[0] == 1 else tuple(shape)


def _check_shape(x: np.ndarray, name: str, shape) -> np.ndarray:
    want = sample_shape(shape)
    if x.ndim == 0 or tuple(x.shape[1:]) != want:
        raise TinydeployError(f"input '{name}': expected an array of shape (samples, "
                              f"{', '.join(map(str, want))}), got {tuple(x.shape)}")
    return x


def load_inputs_for(path_or_arrays, name, shape=None, what: str = "inputs") -> np.ndarray:
    """The samples [N, ...] for the input `name` of `shape` (or a Tensor), checked."""
    if not isinstance(name, str):  # a Tensor
        name, shape = name.name, name.shape
    arrays = _arrays(path_or_arrays, what)
    if name not in arrays:  # labels beside the data (used for accuracy)
        arrays = {k: v for k, v in arrays.items() if not is_labels(k)}
    if name in arrays:
        x = arrays[name]
    elif len(arrays) == 1:  # one array (or FILE.npz:ARRAY): whatever its name
        x = next(iter(arrays.values()))
    else:
        raise TinydeployError(f"the {what} file has arrays {sorted(arrays)} but none is named "
                              f"'{name}', the model's input")
    return _check_shape(x, name, shape)


def load_all_inputs(path_or_arrays, specs, what: str = "inputs") -> dict:
    """{input name: samples [N, ...]} for the inputs specs = [(name, shape), ...] in the
    model's order, checked.  One input: as load_inputs_for (any single array will do).
    Several: one array per input, named as the input, all with the same number of samples."""
    specs = [(n, s) for n, s in specs]
    if len(specs) == 1:
        name, shape = specs[0]
        return {name: load_inputs_for(path_or_arrays, name, shape, what)}
    arrays = _arrays(path_or_arrays, what)
    missing = [n for n, _ in specs if n not in arrays]
    if missing:
        names = ", ".join(f"'{n}'" for n, _ in specs)
        raise TinydeployError(
            f"the {what} file has no array named {' or '.join(repr(m) for m in missing)}: the model "
            f"has {len(specs)} inputs ({names}) and takes one array per input, named as the input; "
            f"arrays found: {', '.join(sorted(arrays)) or 'none'}")
    xs = {n: _check_shape(np.asarray(arrays[n]), n, s) for n, s in specs}
    counts = {n: len(x) for n, x in xs.items()}
    if len(set(counts.values())) > 1:
        raise TinydeployError(f"the {what} file's inputs have different numbers of samples: "
                              + ", ".join(f"'{n}' {c}" for n, c in counts.items()))
    return xs


def io_list(io: dict, role: str) -> list:
    """The compiled model's inputs (role "input") or outputs ("output"), in order."""
    return io.get(role + "s") or [io[role]]


def load_model_inputs(path_or_arrays, io: dict):
    """The samples for a compiled model's input (io: CompileResult.io), checked: one
    array [N, ...]; with several inputs a dict {input name: array}."""
    specs = [(i["name"], i["shape"]) for i in io_list(io, "input")]
    xs = load_all_inputs(path_or_arrays, specs)
    return next(iter(xs.values())) if len(specs) == 1 else xs


def load_calibration(path, g: Graph) -> dict:
    """Float32 calibration samples {input name: array [N, ...]} for the graph's inputs."""
    xs = load_all_inputs(path, [(n, g.tensors[n].shape) for n in g.inputs], what="calibration data")
    for name, x in xs.items():
        if len(x) == 0:
            raise TinydeployError(f"calibration file {path} has no samples")
        if x.dtype != np.float32:
            raise TinydeployError(f"calibration data for input '{name}' must be float32, got {x.dtype}")
    return xs


def load_labels(path_or_arrays) -> Optional[np.ndarray]:
    """The `label` array of an inputs file (or dict), if it has one (then run prints accuracy)."""
    arrays = read_npz(path_or_arrays) if isinstance(path_or_arrays, (str, Path)) else dict(path_or_arrays)
    return arrays.get(LABELS)


def labels_by_output(path_or_arrays, outputs: list) -> dict:
    """{output name: labels} of an inputs file (or dict): `label` labels the first output,
    `label:NAME` the output NAME; outputs: the model's output names in order."""
    arrays = read_npz(path_or_arrays) if isinstance(path_or_arrays, (str, Path)) else dict(path_or_arrays)
    found = {}
    for key in sorted(k for k in arrays if is_labels(k)):
        name = outputs[0] if key == LABELS else key[len(LABELS_OF):]
        if name not in outputs:
            raise TinydeployError(f"the inputs file's array '{key}' labels no output of the model; its outputs "
                                  f"are {', '.join(repr(o) for o in outputs)} ('{LABELS}' labels the first, "
                                  f"'{LABELS_OF}NAME' the output NAME)")
        if name in found:
            raise TinydeployError(f"the inputs file's arrays '{LABELS}' and '{LABELS_OF}{name}' both label "
                                  f"output '{name}'; keep one")
        found[name] = arrays[key]
    return {o: found[o] for o in outputs if o in found}


def class_labels(labels: np.ndarray, n: int, classes: int, path) -> np.ndarray:
    """The true class of each of n samples from the labels of an inputs file: n integer class
    indices, or n one-hot (or probability) rows of the output's size (`classes`)."""
    labels = np.asarray(labels)
    expect = (f"expected {n} integer class indices (shape ({n},)) or {n} one-hot rows "
              f"(shape ({n}, {classes})), one per sample")
    if labels.ndim == 2 and labels.shape == (n, classes) and labels.dtype.kind in "biuf" and classes > 1:
        return labels.argmax(axis=1)
    if labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1:] == (1,)):
        labels = labels.reshape(-1)
        if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f" and np.all(np.isfinite(labels))
                                                   and np.all(labels == np.round(labels))):
            raise TinydeployError(f"{path}: the '{LABELS}' array holds {labels.dtype} values; {expect}")
        if len(labels) != n:
            raise TinydeployError(f"{path}: the '{LABELS}' array has {len(labels)} labels for {n} samples; {expect}")
        truth = labels.astype(np.int64)
        if truth.size and (truth.min() < 0 or truth.max() >= classes):
            bad = int(truth.max() if truth.max() >= classes else truth.min())
            raise TinydeployError(f"{path}: the '{LABELS}' array holds label {bad}, which is not a class index "
                                  f"of the model's {classes} outputs (0 to {classes - 1})")
        return truth
    raise TinydeployError(f"{path}: the '{LABELS}' array has shape {tuple(labels.shape)}; {expect}")


def top1(scores: np.ndarray, labels: np.ndarray, path) -> dict:
    """Top-1 accuracy of per-sample scores [N, ...] against the labels of an inputs file
    (see class_labels)."""
    n = len(scores)
    classes = int(np.prod(scores.shape[1:])) if scores.ndim > 1 else 1
    truth = class_labels(labels, n, classes, path)
    pred = scores.reshape(n, -1).argmax(axis=1)
    correct = int(np.sum(pred == truth))
    return dict(accuracy=correct / n if n else 0.0, correct=correct, samples=n)


def to_library_input(x: np.ndarray, io: dict, raw: bool, want: Optional[dict] = None) -> np.ndarray:
    """Convert user samples to what the C library takes (quantizing float inputs of int8 builds).
    want: which input (an entry of io["inputs"]; default: the first)."""
    want = want or io["input"]
    if len(x) == 0:
        raise TinydeployError(f"input '{want['name']}': the inputs have no samples")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x.reshape(len(x), -1)).any(axis=1)))
        raise TinydeployError(f"input '{want['name']}': sample {bad} holds NaN or infinite values; "
                              "the model takes finite numbers")
    if want["dtype"] == "float32":
        if x.dtype != np.float32:
            raise TinydeployError(f"input '{want['name']}': expected float32 data, got {x.dtype}")
        return x
    if x.dtype == np.int8:
        return x
    if raw:
        raise TinydeployError(f"input '{want['name']}': --raw expects int8 data, got {x.dtype}")
    if x.dtype != np.float32:
        raise TinydeployError(f"input '{want['name']}': expected float32 (quantized on the way in) "
                              f"or int8 data, got {x.dtype}")
    q = np.round(x.astype(np.float64) / want["scale"]) + want["zero_point"]
    return np.clip(q, -128, 127).astype(np.int8)


def to_library_inputs(x, io: dict, raw: bool) -> np.ndarray:
    """User samples (one array, or {input name: array} for several inputs) -> what the
    library's run function takes, per sample: one input as to_library_input; several
    flattened and concatenated in the model's order, [N, total elements]."""
    inputs = io_list(io, "input")
    if len(inputs) == 1:
        return to_library_input(next(iter(x.values())) if isinstance(x, dict) else x, io, raw)
    parts = [to_library_input(x[i["name"]], io, raw, i) for i in inputs]
    dtypes = {p.dtype for p in parts}
    if len(dtypes) > 1:
        raise TinydeployError("the inputs mix int8 and float32 data: give them all as float32 "
                              "(quantized on the way in) or all as int8")
    return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)


def input_dtype(x):
    """The dtype of user samples (one array or a dict of them): int8 if any is int8."""
    if isinstance(x, dict):
        dtypes = [np.asarray(v).dtype for v in x.values()]
        return np.dtype(np.int8) if np.dtype(np.int8) in dtypes else dtypes[0]
    return x.dtype


def from_library_output(y: np.ndarray, io: dict, raw: bool, input_dtype, out: Optional[dict] = None) -> np.ndarray:
    """The library's outputs for the user: int8 ones dequantized, unless the user works in int8.
    out: which output (an entry of io["outputs"]; default: the first)."""
    out = out or io["output"]
    if out["dtype"] == "int8" and not raw and input_dtype != np.int8:
        return ((y.astype(np.float32) - out["zero_point"]) * np.float32(out["scale"])).astype(np.float32)
    return y


def split_outputs(y: np.ndarray, io: dict) -> dict:
    """The library's outputs [N, total elements] (each row: every output flattened and
    concatenated in the model's order) -> {output name: [N, *sample shape]}."""
    y = np.asarray(y)
    n = len(y)
    flat = y.reshape(n, -1)
    result, at = {}, 0
    for o in io_list(io, "output"):
        result[o["name"]] = flat[:, at:at + o["size"]].reshape((n,) + sample_shape(o["shape"]))
        at += o["size"]
    return result


def from_library_outputs(y: np.ndarray, io: dict, raw: bool, input_dtype) -> dict:
    """The library's outputs [N, total] -> {output name: array [N, ...]} for the user."""
    outs = {o["name"]: o for o in io_list(io, "output")}
    return {name: from_library_output(v, io, raw, input_dtype, outs[name])
            for name, v in split_outputs(y, io).items()}


def default_inputs(io: dict, n: int) -> np.ndarray:
    """n deterministic random samples over the input's whole range (verify, bench); several
    inputs: flattened and concatenated per sample, in the model's order."""
    inputs = io_list(io, "input")
    rng = np.random.default_rng(2026)
    parts = []
    for i in inputs:
        sample = sample_shape(i["shape"])
        if i["dtype"] == "int8":
            parts.append(rng.integers(-128, 128, size=(n,) + sample, dtype=np.int8))
        else:
            parts.append(rng.uniform(-1, 1, size=(n,) + sample).astype(np.float32))
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p.reshape(n, -1) for p in parts], axis=1)
