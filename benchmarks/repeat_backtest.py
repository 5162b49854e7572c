"""Backtests of a repeat stage fitted customer by customer, over many simulated data sets.

Each set: customers of the Pareto/NBD process as a journey
(:func:`funnelsim.data.synthetic.simulate_repeat_journeys`: visit, first purchase, repeat
purchases at the customer's own gamma-distributed rate until an unseen drop-out at their
own gamma-distributed rate), seen up to a cutoff at day 450 of 540. The stage is fitted
from the customers' histories (``"gamma"``: rates differ; ``"none"``: one rate for all)
and the repeats known customers make after the cutoff are forecast and compared with
what the simulation did. Printed per set and pooled:

* error of the forecast total and whether the 90% interval holds it, for both models,
  beside the error of the conditional expectation under the *true* parameters (what no
  fit can beat: the future's own randomness);
* customers still active at the cutoff: truth, nowcast mean, inside its 90% interval;
* the 94% intervals of ``r, α, s, β`` holding the truth;
* agreement with a Pareto/NBD maximum-likelihood reference (Fader & Hardie's
  hypergeometric likelihood, their closed-form conditional expectation): correlation of
  per-customer expected repeats, ratio of totals.

    PYTHONPATH=$PWD python benchmarks/repeat_backtest.py --sets 10 --seed 1 --out a.csv
    PYTHONPATH=$PWD python benchmarks/repeat_backtest.py --report a.csv --report b.csv

Measured (``--sets 20 --seed 1``, 3,000 customers, 2 chains × 600 draws, 2 busy cores):
customers differ: mean abs error 2.5% (worst 6.6%), within 5% in 17 of 20 sets, the
90% interval holds the truth in 17 of 20; customers still active, 18 of 20. Everyone
alike: 42.6% too low on average, 0 of 20. The true parameters' own expectation misses by
2.5% on average (worst 7.4%). 94% intervals of r, α, s, β: 95, 90, 100, 100%. MLE
reference: correlation ≥ 0.9999, totals ratio 0.998–1.000. 0 divergences; 85 s per fit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, special

from funnelsim.data.synthetic import simulate_repeat_journeys
from funnelsim.inference import frailty
from funnelsim.inference.repeat import RepeatModel, fit_repeat_stage, repeat_histories

TRUTH = {"r": 0.6, "alpha": 20.0, "s": 0.8, "beta": 120.0}
DAYS, CUTOFF = 540.0, 450.0
START = pd.Timestamp("2025-01-01")


def pareto_nbd_loglik(x, t_x, T, r, alpha, s, beta):  # noqa: ANN001, ANN201
    """Fader & Hardie's hypergeometric form of the Pareto/NBD log-likelihood."""
    rx, rsx = r + x, r + s + x
    c = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    if alpha >= beta:
        m, b1, b2, d = alpha, s + 1, s, alpha - beta
    else:
        m, b1, b2, d = beta, rx, rx + 1, beta - alpha
    a1 = np.log(special.hyp2f1(rsx, b1, rsx + 1, d / (m + t_x))) - rsx * np.log(m + t_x)
    a2 = np.log(special.hyp2f1(rsx, b2, rsx + 1, d / (m + T))) - rsx * np.log(m + T)
    return c + np.logaddexp(np.log(s / rsx) + a1, np.log(rx / rsx) + a2)


def reference(x, t_x, T, horizon):  # noqa: ANN001, ANN201
    """Maximum-likelihood Pareto/NBD and its expected repeats per customer."""

    def nll(theta: np.ndarray) -> float:
        return -float(pareto_nbd_loglik(x, t_x, T, *np.exp(theta)).sum())

    best = optimize.minimize(
        nll, np.log([1.0, 10.0, 1.0, 100.0]), method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-6},
    )  # fmt: skip
    r, alpha, s, beta = np.exp(best.x)
    ll = pareto_nbd_loglik(x, t_x, T, r, alpha, s, beta)
    c = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = np.exp(c - (r + x) * np.log(alpha + T) - s * np.log(beta + T) - ll)
    return (
        alive * (r + x) * (beta + T) / ((alpha + T) * (s - 1.0))
        * (1.0 - ((beta + T) / (beta + T + horizon)) ** (s - 1.0))
    )  # fmt: skip


def one_set(seed: int, customers: int, chains: int, draws: int) -> dict:
    log, truth = simulate_repeat_journeys(customers, **TRUTH, days=DAYS, start=str(START.date()),
                                          seed=seed)  # fmt: skip
    t = (log["timestamp"] - START) / pd.Timedelta(days=1)
    seen = log[t <= CUTOFF]
    ns = seen["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    h = repeat_histories(
        seen["customer_id"].to_numpy(), ns, seen["stage"].to_numpy(object), "purchase",
        end_ns=(START + pd.Timedelta(days=CUTOFF)).value,
    )  # fmt: skip
    buys = t[log["stage"] == "purchase"]
    first = buys.groupby(log["customer_id"]).transform("min")
    actual = int(((buys > CUTOFF) & (first <= CUTOFF)).sum())
    horizon = DAYS - CUTOFF
    rng = np.random.default_rng(seed)
    row: dict = {"seed": seed, "customers": len(h), "actual": actual}
    exact = frailty.expected_repeats(horizon, h.x, h.t_x, h.T, **TRUTH).sum()
    row["true_params_error"] = exact / actual - 1.0
    alive_truth = int((truth.set_index("customer_id").loc[h.customer_id.astype(int), "dropout"]
                       > CUTOFF).sum())  # fmt: skip
    row["alive_truth"] = alive_truth
    for kind in ("gamma", "none"):
        t0 = time.perf_counter()
        post = fit_repeat_stage(h, kind, draws=draws, tune=500, chains=chains, seed=seed)
        row[f"{kind}_seconds"] = time.perf_counter() - t0
        row[f"{kind}_divergences"] = post.attrs["diverging"]
        model = RepeatModel(post, kind, max_draws=400)
        total = model.simulate(h, horizon, rng).sum(axis=1)
        lo, hi = np.quantile(total, [0.05, 0.95])
        row[f"{kind}_forecast"] = float(total.mean())
        row[f"{kind}_error"] = total.mean() / actual - 1.0
        row[f"{kind}_covered"] = bool(lo <= actual <= hi)
        alive = (rng.random((model.n_draws, len(h))) < model.p_alive(h)).sum(axis=1)
        alo, ahi = np.quantile(alive, [0.05, 0.95])
        row[f"{kind}_alive_mean"] = float(alive.mean())
        row[f"{kind}_alive_covered"] = bool(alo <= alive_truth <= ahi)
        if kind == "gamma":
            for name, key in (("repeat_r", "r"), ("repeat_alpha", "alpha"), ("dropout_s", "s"),
                              ("dropout_beta", "beta")):  # fmt: skip
                plo, phi = np.quantile(post[name].values, [0.03, 0.97])
                row[f"{key}_covered"] = bool(plo <= TRUTH[key] <= phi)
            ours = model.expected_repeats(h, horizon).mean(axis=0)
            ref = reference(h.x, h.t_x, h.T, horizon)
            row["reference_correlation"] = float(np.corrcoef(ours, ref)[0, 1])
            row["reference_total_ratio"] = float(ours.sum() / ref.sum())
    return row


def report(frame: pd.DataFrame) -> None:
    n = len(frame)
    print(f"\n{n} data sets, {frame['customers'].mean():,.0f} customers each")
    for kind, label in (("gamma", "customers differ"), ("none", "everyone alike")):
        err = frame[f"{kind}_error"]
        cov = frame[f"{kind}_covered"].mean()
        print(f"  {label:17s} repeats after the cutoff: mean abs error {err.abs().mean():.1%} "
              f"(mean {err.mean():+.1%}, worst {err.abs().max():.1%}); within 5% in "
              f"{(err.abs() < 0.05).mean():.0%}; 90% interval holds the truth "
              f"{cov:.0%} (se {np.sqrt(0.09 / n):.0%})")  # fmt: skip
        alive_err = (frame[f"{kind}_alive_mean"] / frame["alive_truth"] - 1).abs().mean()
        print(f"  {'':17s} still active at the cutoff: 90% interval holds the truth "
              f"{frame[f'{kind}_alive_covered'].mean():.0%}; "
              f"mean abs error {alive_err:.1%}")  # fmt: skip
    e = frame["true_params_error"]
    print(f"  true parameters   mean abs error {e.abs().mean():.1%} (worst {e.abs().max():.1%}):"
          " the future's own randomness")  # fmt: skip
    print("  94% intervals of r, α, s, β holding the truth: "
          + ", ".join(f"{k} {frame[f'{k}_covered'].mean():.0%}" for k in TRUTH))  # fmt: skip
    print(f"  Pareto/NBD MLE reference: correlation min {frame['reference_correlation'].min():.4f},"
          f" totals ratio {frame['reference_total_ratio'].min():.3f}–"
          f"{frame['reference_total_ratio'].max():.3f}")  # fmt: skip
    print(f"  divergences: {int(frame['gamma_divergences'].sum())}; gamma fit "
          f"{frame['gamma_seconds'].median():.0f} s median")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=600)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--report", type=Path, action="append")
    args = ap.parse_args(argv)
    if args.report:
        report(pd.concat([pd.read_csv(p) for p in args.report], ignore_index=True))
        return
    rows = []
    for k in range(args.sets):
        rows.append(one_set(args.seed * 1000 + k, args.customers, args.chains, args.draws))
        r = rows[-1]
        print(f"set {k}: actual {r['actual']}, differ {r['gamma_error']:+.1%} "
              f"({'in' if r['gamma_covered'] else 'OUT'}), alike {r['none_error']:+.1%}, "
              f"true params {r['true_params_error']:+.1%}", flush=True)  # fmt: skip
        if args.out:
            pd.DataFrame(rows).to_csv(args.out, index=False)
    report(pd.DataFrame(rows))


if __name__ == "__main__":
    sys.exit(main())
