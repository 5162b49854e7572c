"""Snapshot (panel CTMC) fits: speed of nutpie vs PyMC, and interval coverage.

    python benchmarks/fit_snapshots.py timing            # compile cold/warm, ESS/s
    python benchmarks/fit_snapshots.py coverage -n 100   # 90% interval coverage per rate

Data: 600 customers of a 4-stage funnel with a back edge (interest → awareness) and
exits to ``lost``, observed 4–6 times at gaps of 3–40 days (exact CTMC simulation).
"Cold" is the first compile in a process (run with a fresh ``PYTENSOR_FLAGS=compiledir=…``
for a truly cold PyTensor cache); "warm" the second.
"""

from __future__ import annotations

import argparse
import time
import warnings

import arviz as az
import numpy as np

from funnelsim.inference.snapshots import (
    build_model,
    fit_snapshots,
    model_inputs,
    simulate_snapshots,
    snapshot_stats,
)

STAGES = ("awareness", "interest", "desire", "purchase")
TRUTH = {
    "awareness": {"interest": 0.08, "lost": 0.02},
    "interest": {"desire": 0.06, "awareness": 0.04, "lost": 0.02},
    "desire": {"purchase": 0.05, "lost": 0.03},
}
warnings.filterwarnings("ignore", message=".*BLAS.*")


def data(seed: int, n: int = 600):
    frame = simulate_snapshots(TRUTH, STAGES, n_customers=n, visits=(4, 6), rng=seed)
    return snapshot_stats(frame, STAGES)


def edges() -> list[str]:
    return [f"{a} -> {b}" for a, row in TRUTH.items() for b in row]


def timing(draws: int, chains: int) -> None:
    import nutpie
    import pymc as pm

    stats = data(2026)
    for run in ("cold", "warm"):
        model, *_ = build_model(stats, edges=edges())
        t0 = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        t1 = time.perf_counter()
        idata = nutpie.sample(
            compiled, draws=draws, tune=draws, chains=chains, seed=1, progress_bar=False
        )
        t2 = time.perf_counter()
        ess = float(az.ess(idata, var_names=["rate"])["rate"].min())
        print(
            f"nutpie {run}: compile {t1 - t0:.1f} s, sampling {t2 - t1:.1f} s, "
            f"min bulk ESS {ess:.0f} -> {ess / (t2 - t1):.0f} ESS/s"
        )
    for run in ("cold", "warm"):
        model, *_ = build_model(stats, edges=edges())
        t0 = time.perf_counter()
        with model:
            idata = pm.sample(
                draws=draws,
                tune=draws,
                chains=chains,
                random_seed=1,
                progressbar=False,
                compute_convergence_checks=False,
            )
        total = time.perf_counter() - t0
        sampling = float(idata.posterior.attrs.get("sampling_time", total))
        ess = float(az.ess(idata, var_names=["rate"])["rate"].min())
        print(
            f"pymc {run}: compile+init {total - sampling:.1f} s, sampling {sampling:.1f} s, "
            f"min bulk ESS {ess:.0f} -> {ess / sampling:.0f} ESS/s"
        )


def coverage(
    n_sets: int, sampler: str, draws: int, chains: int, first: int = 0, customers: int = 600
) -> None:
    """Fit ``n_sets`` simulated data sets; with nutpie the model is compiled once and
    refitted with ``with_data`` (same structure, new pairs, gaps and prior rates)."""
    import nutpie

    names = edges()
    truth = np.array([TRUTH[a][b] for a, row in TRUTH.items() for b in row])
    hits = np.zeros(len(names))
    widths = np.zeros(len(names))
    zs = []
    start = time.perf_counter()
    compiled, k = None, None
    ess_rate = []
    for done, seed in enumerate(range(first, first + n_sets), start=1):
        stats = data(10_000 + seed, customers)
        if sampler == "nutpie":
            _, _, _, design = model_inputs(stats, edges=names)
            if compiled is None or design["k"] > k:
                k = max(design["k"], 96)  # one truncation for all sets
                model, *_ = build_model(stats, edges=names, k=k)
                compiled = nutpie.compile_pymc_model(model)
            t0 = time.perf_counter()
            idata = nutpie.sample(
                compiled.with_data(**design["data"]),
                draws=draws,
                tune=draws,
                chains=chains,
                seed=seed,
                progress_bar=False,
            )
            ess = float(az.ess(idata, var_names=["rate"])["rate"].min())
            ess_rate.append(ess / (time.perf_counter() - t0))
        else:
            idata = fit_snapshots(
                stats,
                edges=names,
                sampler=sampler,
                draws=draws,
                tune=draws,
                chains=chains,
                seed=seed,
            )
        rate = idata.posterior["rate"].sel(segment="all", edge=names)
        lo, hi = rate.quantile([0.05, 0.95], dim=("chain", "draw")).to_numpy()
        hits += (lo <= truth) & (truth <= hi)
        widths += (hi - lo) / truth
        zs.append(((rate.mean(("chain", "draw")) - truth) / rate.std(("chain", "draw"))).values)
        if done % 10 == 0 or done == n_sets:
            print(
                f"{done} data sets, {time.perf_counter() - start:.0f} s: "
                + ", ".join(f"{n} {h / done:.2f}" for n, h in zip(names, hits, strict=True)),
                flush=True,
            )
    se = np.sqrt(0.9 * 0.1 / n_sets)
    print(
        f"coverage of 90% intervals over {n_sets} data sets (binomial se {se:.3f}), "
        f"{time.perf_counter() - start:.0f} s in all"
        + (f", median {np.median(ess_rate):.0f} ESS/s per fit" if ess_rate else "")
        + ":"
    )
    z = np.array(zs)
    print("  edge                     coverage  width/truth  mean z  sd z")
    for e, (n, h, w) in enumerate(zip(names, hits, widths, strict=True)):
        print(
            f"  {n:24s} {h / n_sets:8.3f}  {w / n_sets:11.2f}  {z[:, e].mean():6.2f}"
            f"  {z[:, e].std():4.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["timing", "coverage"])
    parser.add_argument("-n", type=int, default=100, help="data sets (coverage)")
    parser.add_argument("--sampler", default="nutpie", choices=["pymc", "nutpie"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--first", type=int, default=0, help="first data set (coverage)")
    parser.add_argument("--customers", type=int, default=600, help="customers per data set")
    args = parser.parse_args()
    if args.what == "timing":
        timing(args.draws, args.chains)
    else:
        coverage(args.n, args.sampler, args.draws, args.chains, args.first, args.customers)


if __name__ == "__main__":
    main()
