"""Reduce a large event log to sufficient statistics: `read_events` against a naive
per-customer Python loop.

A vectorised simulation writes an N-event log (6-stage journey, silent drop-off, arrivals
staggered over a year, sorted by time so customers straddle chunks) as CSV and Parquet
into a temporary folder; `read_events` reduces each in a child process (wall time and
peak resident memory, VmHWM); a plain-dict loop reduces a sample of customers, its time
is extrapolated per event, and its numbers are checked against `read_events` on the same
sample.

    PYTHONPATH=$PWD python benchmarks/fit_journeys.py            # 10 million events
    PYTHONPATH=$PWD python benchmarks/fit_journeys.py --events 1000000

Measured (2 cores shared with other jobs, load ≈ 4.5; 10 M events, 3.37 M customers,
chunks of 1 M rows): CSV 12.6–16.7 s, Parquet 7.6–12.5 s, peak RSS 1.4–1.5 GB; the naive
loop 8–9 µs/event on a 328 k-event sample (≈ 82–93 s extrapolated, and that loop starts
from rows already parsed into Python objects), so a ratio of 5–11.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

STAGES = ("visit", "signup", "trial", "demo", "offer", "purchase")
CONTINUE = np.array([0.75, 0.7, 0.7, 0.65, 0.6])  # P(next stage) before silent drop-off
DWELL = np.array([3.0, 5.0, 7.0, 4.0, 6.0])  # mean days before the next event
YEAR_NS = 365 * 86_400 * 10**9
START = pd.Timestamp("2025-01-01").value


def simulate(n_events: int, seed: int) -> pa.Table:
    """About ``n_events`` rows ``customer_id, timestamp, stage``, sorted by time."""
    rng = np.random.default_rng(seed)
    mean_len = 1 + np.cumprod(CONTINUE).sum()
    n_c = int(n_events / mean_len * 1.04)  # a few events fall after the end of the data
    go = rng.random((n_c, len(CONTINUE))) < CONTINUE
    length = 1 + np.cumprod(go, axis=1).sum(axis=1)
    arrive = START + rng.integers(0, YEAR_NS, n_c)
    gaps = rng.exponential(DWELL, (n_c, len(DWELL))) * 86_400e9
    at = np.concatenate(
        [arrive[:, None], arrive[:, None] + np.cumsum(gaps, axis=1).astype(np.int64)], axis=1
    )
    keep = (np.arange(len(STAGES)) < length[:, None]) & (at < START + YEAR_NS)
    cust, stage = np.nonzero(keep)
    ts = at[cust, stage]
    order = np.argsort(ts, kind="stable")[:n_events]
    ts_s = (ts[order] // 10**9).astype("datetime64[s]")
    names = pa.DictionaryArray.from_arrays(
        pa.array(stage[order].astype(np.int32)), pa.array(STAGES)
    )
    return pa.table(
        {"customer_id": cust[order], "timestamp": ts_s, "stage": names.cast(pa.string())}
    )


CHILD = """
import json, sys, time, warnings
t0 = time.perf_counter()
from funnelsim.data.events import read_events
t1 = time.perf_counter()
s = read_events(sys.argv[1], stages={stages!r}, chunk_rows=int(sys.argv[2]))
t2 = time.perf_counter()
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({{"import_s": t1 - t0, "reduce_s": t2 - t1, "peak_mb": int(hwm) / 1024,
                  "events": s.n_events, "customers": s.n_customers}}))
"""


def reduce_in_child(path: Path, chunk_rows: int) -> dict:
    code = CHILD.format(stages=STAGES)
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(chunk_rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def naive(rows: list[tuple[int, pd.Timestamp, str]], period_days: float = 1.0) -> dict:
    """The obvious loop: customers in a dict, then for each customer its intervals."""
    by_customer: dict[int, list[tuple[float, str]]] = defaultdict(list)
    t_min = min(r[1] for r in rows).normalize()
    t_max = max(r[1] for r in rows)
    for cust, ts, stage in rows:
        by_customer[cust].append(((ts - t_min).total_seconds() / 86_400, stage))
    end = (t_max - t_min).total_seconds() / 86_400
    n_p = max(int(np.ceil(end / period_days - 1e-12)), 1)
    exposure: dict[tuple[str, int], float] = defaultdict(float)
    transitions: dict[tuple[str, str, int], int] = defaultdict(int)
    arrivals: dict[int, int] = defaultdict(int)
    first: dict[str, int] = defaultdict(int)
    tails: dict[tuple[str, int], int] = defaultdict(int)

    def period(t: float) -> int:
        return min(int(t // period_days), n_p - 1)

    for customer in by_customer:
        events = by_customer[customer]
        arrivals[period(events[0][0])] += 1
        first[events[0][1]] += 1
        for (a, s), (b, s2) in zip(events, events[1:]):
            transitions[(s, s2, period(b))] += 1
            p = period(a)
            while a < b:
                stop = min(b, (p + 1) * period_days) if p < n_p - 1 else b
                exposure[(s, p)] += stop - a
                a, p = stop, p + 1
        last_t, last_s = events[-1]
        tails[(last_s, period(last_t))] += 1
    return {
        "exposure": exposure,
        "transitions": transitions,
        "arrivals": arrivals,
        "first": first,
        "tails": tails,
    }


def check_equal(result: dict, stats) -> None:  # noqa: ANN001
    idx = {s: k for k, s in enumerate(stats.stages)}
    exp = np.zeros_like(stats.exposure[0])
    for (s, p), v in result["exposure"].items():
        exp[idx[s], p] += v
    np.testing.assert_allclose(exp, stats.exposure[0], atol=1e-6)
    tr = np.zeros_like(stats.transitions[0])
    for (s, s2, p), v in result["transitions"].items():
        tr[idx[s], idx[s2], p] += v
    assert (tr == stats.transitions[0]).all()
    arr = np.zeros(stats.n_periods, dtype=np.int64)
    for p, v in result["arrivals"].items():
        arr[p] += v
    assert (arr == stats.arrivals[0].sum(axis=0)).all()
    assert all(stats.first_stage[0, idx[s]] == v for s, v in result["first"].items())
    tails = np.zeros((len(stats.stages), stats.n_periods), dtype=np.int64)
    np.add.at(tails, (stats.tails_stage, stats.tails_period), stats.tails_count)
    for (s, p), v in result["tails"].items():
        assert tails[idx[s], p] == v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--sample", type=int, default=200_000, help="events in the naive loop's sample"
    )
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    from funnelsim.data.events import read_events

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table = simulate(args.events, args.seed)
        csv_path, pq_path = Path(tmp) / "log.csv", Path(tmp) / "log.parquet"
        pacsv.write_csv(table, csv_path)
        pq.write_table(table, pq_path)
        print(
            f"simulated and wrote {table.num_rows:,} events in {time.perf_counter() - t0:.1f} s "
            f"(CSV {csv_path.stat().st_size / 2**20:.0f} MB, "
            f"Parquet {pq_path.stat().st_size / 2**20:.0f} MB)"
        )
        runs = {
            name: reduce_in_child(p, args.chunk_rows)
            for name, p in (("CSV", csv_path), ("Parquet", pq_path))
        }

        # the naive loop on the customers of the first `sample` events (their whole journeys)
        ids = table.column("customer_id").to_numpy()
        chosen = np.unique(ids[: args.sample])
        sub = table.filter(pa.array(np.isin(ids, chosen)))
        rows = list(
            zip(
                sub.column("customer_id").to_pylist(),
                pd.to_datetime(sub.column("timestamp").to_numpy()).tolist(),
                sub.column("stage").to_pylist(),
            )
        )
        t0 = time.perf_counter()
        result = naive(rows)
        naive_s = time.perf_counter() - t0
        sample_path = Path(tmp) / "sample.csv"
        pacsv.write_csv(sub, sample_path)
        check_equal(result, read_events(sample_path, stages=STAGES))
        per_event = naive_s / len(rows)

    n = table.num_rows
    print(
        f"naive loop: {len(rows):,} events of {len(chosen):,} customers in {naive_s:.2f} s "
        f"({per_event * 1e6:.2f} µs/event); its statistics equal read_events' on that sample\n"
    )
    title = f"reduction of {n:,} events"
    print(f"{title:<34}{'wall s':>9}{'peak MB':>10}{'ratio':>8}")
    print(f"{'naive loop (extrapolated)':<34}{per_event * n:>9.1f}{'':>10}{1:>8.1f}")
    for name, r in runs.items():
        ratio = per_event * n / r["reduce_s"]
        print(
            f"{'read_events, ' + name:<34}{r['reduce_s']:>9.1f}{r['peak_mb']:>10.0f}{ratio:>8.1f}"
        )
    ok = all(r["reduce_s"] <= 20 and r["peak_mb"] <= 2048 for r in runs.values())
    print(
        f"\ntarget ≤ 20 s and ≤ 2 GB: {'met' if ok else 'NOT met'} "
        f"({runs['CSV']['customers']:,} customers; chunks of {args.chunk_rows:,} rows)"
    )


if __name__ == "__main__":
    main()
