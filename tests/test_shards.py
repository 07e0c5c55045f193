"""Sharded verify/validate (issue 18, item 3): the samples split into shards, each run by
its own firmware on its own emulator, locally or as Ray tasks; the merged outputs equal a
single run's bit for bit."""
import json

import numpy as np
import pytest

from conftest import EXAMPLES, cli, model_path

from tinydeploy import api, data, on_target, shards
from tinydeploy.errors import TinydeployError

DIGITS = EXAMPLES / "digits" / "digits_cnn.onnx"
CALIB = EXAMPLES / "digits" / "calib.npz"
# SysTick's wrap interrupt lands in a different sample when the runs start at different
# points, and its handler's instructions are counted with that sample: a few per wrap
SYSTICK_JITTER = 16


def test_split_is_contiguous_ordered_and_never_empty():
    assert shards.split(7, 3) == [slice(0, 2), slice(2, 5), slice(5, 7)]
    assert shards.split(2, 8) == [slice(0, 1), slice(1, 2)]
    assert shards.split(5, 1) == [slice(0, 5)]
    for n in range(1, 30):
        for k in range(1, 9):
            parts = shards.split(n, k)
            assert [i for s in parts for i in range(s.start, s.stop)] == list(range(n))


def test_executor_refuses_both_jobs_and_ray():
    with pytest.raises(TinydeployError, match="give one or the other"):
        shards.Executor(jobs=2, ray_address="auto")
    with pytest.raises(TinydeployError, match="jobs must be at least 1, not 0"):
        shards.Executor(jobs=0)


@pytest.fixture(scope="module")
def digits_lib(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    result = api.compile(str(DIGITS), target="stm32f746", out_dir=tmp / "lib", calib=str(CALIB))
    xq = data.to_library_inputs(api.load_inputs(str(EXAMPLES / "digits" / "test.npz"), result),
                                result.io, raw=False)[:9]
    _, single = on_target.build_and_run(result, xq, tmp / "single", mode="profile")
    return result, xq, single, tmp


@pytest.mark.parametrize("jobs", [2, 4])
def test_local_shards_equal_one_run(digits_lib, jobs):
    result, xq, single, tmp = digits_lib
    elf, sharded = on_target.build_and_run(result, xq, tmp / f"jobs{jobs}", mode="profile",
                                           executor=shards.Executor(jobs=jobs))
    assert elf is None
    np.testing.assert_array_equal(sharded.output_array, single.output_array)
    assert len(sharded.instructions) == len(single.instructions) == len(xq)
    assert np.max(np.abs(np.subtract(sharded.instructions, single.instructions))) <= SYSTICK_JITTER
    assert len(sharded.layer_instructions) == len(xq)
    assert sharded.stack_bytes == single.stack_bytes


def test_verify_cli_with_jobs(tmp_path):
    out = cli("verify", str(model_path("ad", "int8_qdq.onnx")), "-t", "rv32-zve32x", "--samples", "5",
              "-j", "3", "--json", "-q")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["match"] and r["samples"] == 5 and r["max_abs_diff"] == 0.0


def test_sharded_validate_equals_unsharded():
    kw = dict(inputs=str(EXAMPLES / "digits" / "test.npz"), calib=str(CALIB))
    one = api.validate(str(DIGITS), "nucleo-l4r5zi", **kw)
    three = api.validate(str(DIGITS), "nucleo-l4r5zi", jobs=3, **kw)
    assert three.matches_golden and one.matches_golden
    for a, b in zip(one.outputs, three.outputs):
        assert (a.accuracy, a.top1_agreement, a.rmse, a.sqnr_db) == (b.accuracy, b.top1_agreement, b.rmse, b.sqnr_db)


def test_cli_refuses_jobs_with_ray():
    out = cli("verify", str(DIGITS), "-t", "stm32f746", "-j", "2", "--ray", "auto")
    assert out.returncode == 2
    assert "--jobs is for local shards; with --ray the cluster's CPUs run the shards" in out.stderr


def test_ray_shards_equal_one_run(digits_lib):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tinydeploy[ray]' to run "
                                            "the Ray test)")
    result, xq, single, tmp = digits_lib
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _, sharded = on_target.build_and_run(result, xq, tmp / "ray", mode="profile",
                                             executor=shards.Executor(ray_address="auto"))
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(sharded.output_array, single.output_array)
    assert np.max(np.abs(np.subtract(sharded.instructions, single.instructions))) <= SYSTICK_JITTER
