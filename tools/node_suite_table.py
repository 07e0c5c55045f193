"""ONNX's backend node tests (tests/onnx_node_suite.py): run them, record the outcomes,
rewrite README's per-op table.

    python tools/node_suite_table.py            # README's table from tests/data/onnx_node_suite.json
    python tools/node_suite_table.py --run      # run every case (C included), then write both
    python tools/node_suite_table.py --run --jobs 2 --interpreter-only

tests/test_onnx_node_suite.py checks the outcomes against the JSON file and README's
table against the file, so after a change that makes a case pass (or a new onnx version
brings new cases) run this with --run and commit both files.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import onnx_node_suite as suite  # noqa: E402

_CASES: list = []


def _run(i_c):
    i, c_code = i_c
    return suite.run_case(_CASES[i], c_code=c_code)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run every case and rewrite the JSON file")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--interpreter-only", action="store_true",
                    help="with --run: the float interpreter only, not the generated C")
    args = ap.parse_args(argv)
    if args.run:
        _CASES[:] = suite.collect()
        start = time.time()
        with ProcessPoolExecutor(args.jobs) as ex:
            results = list(ex.map(_run, [(i, not args.interpreter_only) for i in range(len(_CASES))]))
        results = dict(zip((c.name for c in _CASES), results))
        print(f"{len(_CASES)} cases in {time.time() - start:.0f} s: "
              + ", ".join(f"{k} {v}" for k, v in collections.Counter(r["status"] for r in results.values()).items()))
        for name, r in results.items():
            if r["status"] in suite.FAILING:
                print(f"{name}: {r['status']}: {r['detail']}\n{r.get('traceback', '')}")
        suite.save_expected(results, _CASES)
    suite.write_readme(suite.load_expected())
    print(f"wrote {suite.README.relative_to(REPO)}" + (f" and {suite.EXPECTED.relative_to(REPO)}" if args.run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
