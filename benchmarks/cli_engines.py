"""Whole-command time of ``funnelsim run`` with the count engine against ``--engine expected``.

Runs ``python -m funnelsim.cli run scenarios/bike_shop_holiday.yaml -o TMP -q`` with
the scenario's engine (counts, 500 replicates × 4 plans) and the same command with
``--engine expected``, each in a fresh process, and prints the best wall-clock times
and their ratio. The first count-engine run uses an empty numba cache (``--cold``:
the compile cost a fresh install pays once), the rest a warm one.

Run::

    python benchmarks/cli_engines.py              # best of 3
    python benchmarks/cli_engines.py --repeats 1 --workers 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLIDAY = ROOT / "scenarios" / "bike_shop_holiday.yaml"


def timed(args: list[str], env: dict[str, str]) -> float:
    """Seconds for one ``funnelsim run`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="funnelsim-bench-") as out:
        command = [sys.executable, "-m", "funnelsim.cli", "run", str(HOLIDAY), "-o", out, "-q"]
        t0 = time.perf_counter()
        subprocess.run(command + args, check=True, env=env, cwd=ROOT)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="--workers for the count engine")
    parser.add_argument("--cold", action="store_true", help="also time a cold numba cache")
    args = parser.parse_args()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    counts_args = ["--workers", str(args.workers)]
    if args.cold:
        with tempfile.TemporaryDirectory(prefix="funnelsim-numba-") as cache:
            cold = timed(counts_args, env | {"NUMBA_CACHE_DIR": cache})
            warm = timed(counts_args, env | {"NUMBA_CACHE_DIR": cache})
        print(f"count engine, empty numba cache: {cold:6.2f} s (then {warm:.2f} s warm)")
    timed(counts_args, env)  # make sure the usual cache is warm
    counts, expected = [], []
    for _ in range(args.repeats):
        counts.append(timed(counts_args, env))
        expected.append(timed(["--engine", "expected"], env))
    print(f"funnelsim run {HOLIDAY.name}, best of {args.repeats} (wall clock, fresh processes)")
    print(f"  counts (--workers {args.workers}): {min(counts):6.2f} s  (worst {max(counts):.2f})")
    print(f"  --engine expected:     {min(expected):6.2f} s  (worst {max(expected):.2f})")
    print(f"  ratio counts / expected: {min(counts) / min(expected):.2f}")


if __name__ == "__main__":
    main()
