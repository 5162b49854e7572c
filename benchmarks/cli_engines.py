"""Whole-command time of ``funnelsim run`` with the count engine against ``--engine expected``.

Runs ``python -m funnelsim.cli run scenarios/bike_shop_holiday.yaml -o TMP -q`` with
the scenario's engine (counts, 500 replicates × 4 plans) and the same command with
``--engine expected``, each in a fresh process, and prints the best wall-clock times
and their ratio, and the same for CPU time (user + system of the child process, which
is steadier than wall time on a shared machine). With ``--cold`` a first count-engine
run uses an empty numba cache (the compile cost a fresh install pays once).

Run::

    python benchmarks/cli_engines.py              # best of 3
    python benchmarks/cli_engines.py --repeats 1 --workers 2
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLIDAY = ROOT / "scenarios" / "bike_shop_holiday.yaml"


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds for one ``funnelsim run`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="funnelsim-bench-") as out:
        command = [sys.executable, "-m", "funnelsim.cli", "run", str(HOLIDAY), "-o", out, "-q"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(command + args, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return wall, cpu


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
        print(
            f"count engine, empty numba cache: {cold[0]:6.2f} s wall, {cold[1]:6.2f} s CPU "
            f"(then warm: {warm[0]:.2f} s wall, {warm[1]:.2f} s CPU)"
        )
    timed(counts_args, env)  # make sure the usual cache is warm
    counts, expected = [], []
    for _ in range(args.repeats):
        counts.append(timed(counts_args, env))
        expected.append(timed(["--engine", "expected"], env))
    print(f"funnelsim run {HOLIDAY.name}, best of {args.repeats} (fresh processes)")
    print(f"  {'':24} {'wall s':>8} {'CPU s':>8}")
    best_c = [min(x[i] for x in counts) for i in (0, 1)]
    best_e = [min(x[i] for x in expected) for i in (0, 1)]
    print(
        f"  {'counts (--workers ' + str(args.workers) + ')':24} {best_c[0]:8.2f} {best_c[1]:8.2f}"
    )
    print(f"  {'--engine expected':24} {best_e[0]:8.2f} {best_e[1]:8.2f}")
    print(
        f"  {'ratio counts / expected':24} {best_c[0] / best_e[0]:8.2f} "
        f"{best_c[1] / best_e[1]:8.2f}"
    )


if __name__ == "__main__":
    main()
