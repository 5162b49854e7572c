"""Wall time of ``funnelsim fit`` on a 20,000-customer history, per model kind, with a
cold and a warm compile cache, and the effective draws per second of the sampler.

The histories are simulated by funnelsim's agent engine from the bike-shop journey
(back edges, staggered arrivals over 180 days):

* ``conjugate`` — every exit recorded (``--record-lost``): exact Gamma posterior;
* ``gibbs`` — drop-off silent: exact data-augmentation Gibbs sampler;
* ``nuts`` — drop-off silent and a campaign with daily spend on desire → conversion:
  PyMC model on the sufficient statistics, sampled with nutpie (and PyMC's NUTS);
* ``snapshots`` — the customers of the first history (a CRM records who is lost) seen
  at irregular export dates.

"Cold" runs get empty PyTensor and numba cache folders; "warm" ones reuse them. The
columns after them describe the warm run: nutpie's compile (PyMC compiles inside its
sampling), sampling, the smallest bulk ESS of any reported parameter and ESS per
second of sampling; the wall times include starting Python, reading the file and
writing the outputs.
Run: ``python benchmarks/fit_time.py`` (``--customers N`` to change the size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def simulate(folder: Path, customers: int, seed: int = 7) -> dict[str, Path]:
    """Write the event logs, spend CSV, campaigns YAML and snapshots the runs read."""
    from funnelsim.scenario import load_scenario
    from funnelsim.scenario.runner import run

    days = 180
    spend = pd.DataFrame({"date": pd.date_range("2026-01-01", periods=days, freq="D")})
    rng = np.random.default_rng(seed)
    spend["promo"] = np.where(rng.random(days) < 0.3, rng.uniform(200, 800, days), 0.0).round(2)
    spend_csv = folder / "spend.csv"
    spend.to_csv(spend_csv, index=False)
    campaign = {
        "promo": {
            "spend": {"csv": str(spend_csv)},
            "carryover": 0.5,
            "half_saturation": 400,
            "effects": [{"edge": "desire -> conversion", "lift": 2.0}],
        }
    }
    (folder / "campaigns.yaml").write_text(yaml.safe_dump({"campaigns": campaign}))
    raw = yaml.safe_load((ROOT / "scenarios" / "bike_shop.yaml").read_text())
    raw.pop("population", None)
    raw["horizon"] = {"start": "2026-01-01", "periods": days, "step": "day"}
    raw["arrivals"] = {"per_day": customers / days, "stage": "awareness"}
    raw["seed"] = seed
    raw["engine"] = "agents"
    out = {}
    for name, lost, campaigns in (
        ("observed", True, {}),
        ("silent", False, {}),
        ("campaign", False, campaign),
    ):
        spec_raw = {**raw, "baseline": {"campaigns": campaigns}}
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec_raw, sort_keys=False))
        result = run(load_scenario(path), replicates=1, record_journeys=True, record_lost=lost)
        log = result.journeys["baseline"].drop(columns=["segment", "channel"])
        out[name] = folder / f"{name}.csv"
        log.to_csv(out[name], index=False)
    out["snapshots"] = folder / "snapshots.csv"
    snapshots(pd.read_csv(out["observed"], parse_dates=["timestamp"]), rng).to_csv(
        out["snapshots"], index=False
    )
    out["campaigns"] = folder / "campaigns.yaml"
    out["spend"] = spend_csv
    return out


def snapshots(log: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each customer's stage at the end of 2–6 irregular export dates, the first on the
    day of their first event, then every 5–39 days while the data last."""
    first = log.groupby("customer_id")["timestamp"].min().dt.normalize()
    visits = rng.integers(2, 7, len(first))
    cid = np.repeat(first.index.to_numpy(), visits)
    gaps = rng.integers(5, 40, len(cid))
    starts = np.repeat(np.cumsum(visits) - visits, visits)
    gaps[np.arange(len(cid)) == starts] = 0
    offset = pd.Series(gaps).groupby(starts).cumsum().to_numpy()
    date = np.repeat(first.to_numpy(), visits) + pd.to_timedelta(offset, unit="D")
    snap = pd.DataFrame({"customer_id": cid, "date": date})
    snap = snap[snap["date"] <= log["timestamp"].max()]
    snap["seen_by"] = snap["date"] + pd.Timedelta(days=1)
    merged = pd.merge_asof(
        snap.sort_values("seen_by"),
        log.sort_values("timestamp")[["customer_id", "timestamp", "stage"]],
        left_on="seen_by",
        right_on="timestamp",
        by="customer_id",
        direction="backward",
        allow_exact_matches=False,
    )
    merged["date"] = merged["date"].dt.strftime("%Y-%m-%d")
    return merged.sort_values(["customer_id", "date"])[["customer_id", "date", "stage"]]


def fit_once(args: list[str], out: Path, cache: Path) -> tuple[float, dict]:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "funnelsim.cli", "fit", *args, "-o", str(out), "-q", "--seed", "1"],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    from funnelsim.inference.fitted import FittedFunnel

    fit = FittedFunnel.load(out)
    diag = fit.diagnostics()
    seconds = float(fit.idata.attrs.get("sampling_seconds", np.nan))
    info = {
        "method": fit.idata.attrs.get("method"),
        "sampler": fit.idata.attrs.get("sampler"),
        "ess_bulk_min": diag.ess_bulk_min,
        "compile_s": float(fit.idata.attrs.get("compile_seconds", 0.0)),
        "sampling_s": seconds,
        "ok": diag.ok,
    }
    for p in out.parent.glob(out.stem + "*"):
        p.unlink()
    (out.parent / ".funnelsim.json").unlink(missing_ok=True)
    return wall, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--only", help="run only the models whose name starts with this")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        files = simulate(folder, opts.customers)
        print(f"simulated the histories in {time.perf_counter() - t0:.1f} s")
        cases = [
            ("conjugate", [str(files["observed"])]),
            ("gibbs", [str(files["silent"])]),
            (
                "nuts (nutpie)",
                [
                    str(files["campaign"]),
                    "--campaigns",
                    str(files["campaigns"]),
                    "--spend",
                    str(files["spend"]),
                ],
            ),
            (
                "nuts (pymc)",
                [
                    str(files["campaign"]),
                    "--campaigns",
                    str(files["campaigns"]),
                    "--spend",
                    str(files["spend"]),
                    "--sampler",
                    "pymc",
                ],
            ),
            ("snapshots (nutpie)", [str(files["snapshots"]), "--kind", "snapshots"]),
            (
                "snapshots (pymc)",
                [str(files["snapshots"]), "--kind", "snapshots", "--sampler", "pymc"],
            ),
        ]
        rows = []
        print(
            f"{'model':<20}{'cold s':>9}{'warm s':>9}{'compile s':>11}{'sampling s':>12}"
            f"{'min ESS':>9}{'ESS/s':>9}  converged"
        )
        for name, args in cases:
            if opts.only and not name.startswith(opts.only):
                continue
            cache = folder / f"cache-{len(rows)}"
            cold, _ = fit_once(args, folder / "fit.nc", cache)
            warm, info = fit_once(args, folder / "fit.nc", cache)
            rate = info["ess_bulk_min"] / info["sampling_s"] if info["sampling_s"] > 0 else np.nan
            rows.append({"model": name, "cold_s": cold, "warm_s": warm, **info, "ess_per_s": rate})
            print(
                f"{name:<20}{cold:>9.1f}{warm:>9.1f}{info['compile_s']:>11.1f}"
                f"{info['sampling_s']:>12.2f}{info['ess_bulk_min']:>9.0f}{rate:>9.0f}"
                f"  {'yes' if info['ok'] else 'NO'}"
            )
        if opts.json:
            opts.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
