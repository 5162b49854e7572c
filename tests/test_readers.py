"""Readers of event logs and CRM snapshots: the chunked reduction equals the in-memory one,
and every kind of bad data gets one located message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from funnelsim.data.events import read_events
from funnelsim.data.snapshots import read_snapshots
from funnelsim.data.stagemap import parse_columns, read_stage_map
from funnelsim.errors import ScenarioError
from funnelsim.inference.stats import JourneyStats, journey_stats
from tests.conftest import SCENARIOS

STAGES = ("awareness", "interest", "desire", "conversion")
RAW = {
    "awareness": "first_visit",
    "interest": "view_item",
    "desire": "add_to_cart",
    "conversion": "purchase",
    "lost": "cancel",
}
ARRAYS = (
    "exposure",
    "transitions",
    "arrivals",
    "first_stage",
    "tails_segment",
    "tails_stage",
    "tails_period",
    "tails_left",
    "tails_count",
)


def journeys(n: int, seed: int) -> pd.DataFrame:
    """Customers arriving over 30 days at any stage, moving forward (sometimes back, or
    repeating a purchase), some cancelling (explicit `lost`), most falling silent."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n):
        t = pd.Timestamp("2026-03-01") + pd.Timedelta(seconds=int(rng.integers(0, 30 * 86400)))
        s = int(rng.choice(4, p=[0.7, 0.2, 0.1, 0.0]))
        seg, chan = rng.choice(["retail", "pro"]), rng.choice(["ads", "email", "seo"])
        for _ in range(int(rng.integers(1, 6))):
            name = STAGES[s] if s < 4 else "lost"
            rows.append((f"c{c:04d}", t, name, seg, rng.choice(["ads", "email", "seo", chan])))
            if s == 4:
                break
            t += pd.Timedelta(seconds=int(rng.exponential(2 * 86400)))
            u = rng.random()
            s = 4 if u < 0.1 else max(s - 1, 0) if u < 0.2 else min(s + (u < 0.9), 3)
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp", "stage", "segment", "channel"])
    return log.sort_values("timestamp", kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return journeys(400, seed=9)


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def assert_same(got: JourneyStats, want: JourneyStats) -> None:
    assert (got.stages, got.segments, got.channels) == (want.stages, want.segments, want.channels)
    assert (got.start, got.end, got.n_events, got.n_customers) == (
        want.start,
        want.end,
        want.n_events,
        want.n_customers,
    )
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, err_msg=name)


# ---------------------------------------------------------------- the chunked reduction


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("chunk_rows", [7, 1_000_000], ids=["tiny-chunks", "one-chunk"])
@pytest.mark.parametrize("period_days", [1.0, 7.0, 1 / 24], ids=["day", "week", "hour"])
def test_chunks_equal_whole_file(log, tmp_path, suffix, chunk_rows, period_days):
    path = write(log, tmp_path / f"log{suffix}")
    got = read_events(path, stages=STAGES, chunk_rows=chunk_rows, period_days=period_days)
    assert_same(got, journey_stats(log, STAGES, period_days=period_days))
    assert got.explicit_exits and got.tails_count.sum() > 0  # both kinds of ending present


def test_customer_sorted_file_and_given_end(log, tmp_path):
    by_customer = log.sort_values(["customer_id", "timestamp"], kind="stable")
    path = write(by_customer, tmp_path / "log.csv")
    end = pd.Timestamp("2026-04-30 06:00")
    got = read_events(path, stages=STAGES, chunk_rows=13, end=end)
    assert_same(got, journey_stats(log, STAGES, end=end))


def test_stage_map_counts_unmapped_and_drops_ignored(log, tmp_path):
    raw = log.assign(stage=log["stage"].map(RAW))
    noise = raw.iloc[::10].assign(stage="page_ping")  # ignored
    odd = raw.iloc[5::40].assign(stage="wishlist")  # not in the map: counted, skipped
    messy = pd.concat([raw, noise, odd]).sort_values("timestamp", kind="stable")
    path = write(
        messy.rename(columns={"customer_id": "user", "stage": "event"}), tmp_path / "l.csv"
    )
    smap = tmp_path / "map.yaml"
    smap.write_text("".join(f"{v}: {k}\n" for k, v in RAW.items()) + "page_ping: ignore\n")
    got = read_events(
        path, columns="customer_id=user,stage=event", stage_map=smap, stages=STAGES, chunk_rows=50
    )
    assert got.unmapped == {"wishlist": len(odd)}
    assert_same(got, journey_stats(log, STAGES))


def test_order_derived_from_the_data(log, tmp_path):
    path = write(log[["customer_id", "timestamp", "stage"]], tmp_path / "log.csv")
    assert read_events(path).stages == STAGES + ("lost",)


def test_progress_reports_rows_and_bytes(log, tmp_path):
    path = write(log, tmp_path / "log.csv")
    calls = []
    read_events(path, stages=STAGES, chunk_rows=100, progress=lambda *a: calls.append(a))
    rows = [c[0] for c in calls]
    assert rows == sorted(rows) and rows[-1] == len(log) and len(calls) >= len(log) / 125
    assert calls[-1][1] == calls[-1][2] == path.stat().st_size


def test_timestamp_formats(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "customer_id,timestamp,stage\n1,2026-03-01,awareness\n"
        "1,2026-03-01T10:15:00,interest\n1,2026-03-01 12:15:00+02:00,desire\n"
    )
    s = read_events(path, stages=STAGES)
    # 10:15 → 12:15+02:00 is 10:15 UTC: a move at the same instant, no time in interest
    np.testing.assert_allclose(s.exposure[0, :3].sum(axis=-1), [10.25 / 24, 0.0, 0.0])
    assert s.transitions[0, 1, 2].sum() == 1  # equal times keep file order: interest → desire
    with pytest.raises(ScenarioError, match="'soon' is not a date"):
        read_events(path, end="soon")
    with pytest.raises(ScenarioError, match="periods of 1e-07 days cannot be used"):
        read_events(path, period_days=1e-7)


# ---------------------------------------------------------------- column mapping, stage map


def test_parse_columns():
    assert parse_columns("customer_id=user, timestamp=ts,stage=event") == {
        "customer_id": "user",
        "timestamp": "ts",
        "stage": "event",
    }
    assert parse_columns("date=as_of", kind="snapshots") == {"date": "as_of"}
    with pytest.raises(ScenarioError, match="unknown column name 'timestamp'"):
        parse_columns("timestamp=ts", kind="snapshots")
    with pytest.raises(ScenarioError, match="not of the form"):
        parse_columns("customer_id")


def test_read_stage_map(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("first_visit: awareness\npurchase: conversion\nping: null\nscroll: ignore\n")
    assert read_stage_map(path) == {
        "first_visit": "awareness",
        "purchase": "conversion",
        "ping": None,
        "scroll": None,
    }
    path.write_text("first_visit: awareness\npurchase: [conversion\n")
    with pytest.raises(ScenarioError) as err:
        read_stage_map(path)
    assert "not valid YAML" in str(err.value) and err.value.problems[0].line is not None
    path.write_text("first_visit: awareness\npurchase: 3\n")
    with pytest.raises(ScenarioError) as err:
        read_stage_map(path)
    assert err.value.problems[0].line == 2 and "not a stage name" in str(err.value)


# ---------------------------------------------------------------- bad event logs


def error_of(path: Path, **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as err:
        read_events(path, **kw)
    assert err.value.source == str(path) and len(err.value.problems) == 1
    return err.value


def test_missing_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,timestmp,stage\n1,2026-03-01,awareness\n")
    err = error_of(path)
    text = str(err)
    assert "no column 'customer_id', 'timestamp'" in text and "user, timestmp, stage" in text
    assert "--columns" in text
    err = error_of(path, columns="customer_id=user")
    assert "did you mean 'timestmp'?" in str(err) and "'timestamp'" in str(err)


def test_unparseable_timestamps_listed_with_rows_and_total(log, tmp_path):
    bad = log.astype({"timestamp": str})
    bad.loc[[3, 50, 51, 52, 60, 70, 80], "timestamp"] = [
        "soon",
        "x",
        "",
        "2026-13-01",
        "y",
        "z",
        "w",
    ]
    path = write(bad, tmp_path / "log.csv")
    err = error_of(path, stages=STAGES, chunk_rows=20)
    text = str(err)
    assert "7 timestamps could not be read" in text and "row 5 ('soon')" in text
    assert "row 54 ('2026-13-01')" in text and "2 more" in text and err.problems[0].line == 5


@pytest.mark.parametrize("chunk_rows", [3, 100])
def test_events_out_of_order(tmp_path, chunk_rows):
    path = tmp_path / "log.csv"
    path.write_text(
        "customer_id,timestamp,stage\na,2026-03-01,awareness\nb,2026-03-02,awareness\n"
        "a,2026-03-05,interest\nb,2026-03-03,interest\na,2026-03-04,desire\n"
    )
    err = error_of(path, chunk_rows=chunk_rows)
    assert "customer 'a': the event on row 6 is earlier than the one on row 4" in str(err)
    assert err.problems[0].line == 6


def test_segment_changes(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "customer_id,timestamp,stage,segment\n1,2026-03-01,awareness,pro\n"
        "1,2026-03-02,interest,retail\n"
    )
    assert "segment on row 3 differs from row 2" in str(error_of(path))


def test_empty_and_header_only(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("")
    assert "empty" in str(error_of(path))
    path.write_text("customer_id,timestamp,stage\n")
    assert "no rows" in str(error_of(path))


def test_unmapped_and_mismatched_stages(log, tmp_path):
    raw = write(log.assign(stage=log["stage"].map(RAW)), tmp_path / "raw.csv")
    err = error_of(raw, stage_map={"signup": "awareness"})
    assert "no event maps to a stage; unmapped names: 'first_visit' (" in str(err)
    path = write(log, tmp_path / "log.csv")
    err = error_of(path, stages=("awareness", "interest", "conversion"))
    text = str(err)
    assert "the funnel's stages do not match the data: 'desire'" in text
    assert "funnel: awareness, interest, conversion" in text


# ---------------------------------------------------------------- snapshots


def test_snapshots_sorted_and_typed(tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text(
        "lead,as_of,status,segment\nb,2026-02-01,won,pro\na,2026-01-05,lead,pro\n"
        "b,2026-01-01,lead,pro\na,2026-01-01,lead,pro\na,2026-01-01,lead,pro\n"
    )
    df = read_snapshots(
        path, columns="customer_id=lead,date=as_of,stage=status", stages=("lead", "won")
    )
    assert list(df.columns) == ["customer_id", "date", "stage", "segment"]
    assert df["date"].dtype == "datetime64[ns]"
    assert df[["customer_id", "stage"]].values.tolist() == [
        ["a", "lead"],
        ["a", "lead"],
        ["b", "lead"],
        ["b", "won"],
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "customer_id,date,stage\na,2026-01-01,lead\na,2026-01-01,won\nb,2026-01-02,lead\n"
            "b,2026-01-09,won\n",
            "in two stages at once, first customer 'a': row 2",
        ),
        (
            "customer_id,date,stage\na,2026-01-01,lead\nb,2026-01-02,won\n",
            "snapshots need at least two dates per customer",
        ),
        (
            "customer_id,date,stage\na,2026-01-01,lead\na,01/02/2026,won\n",
            "1 date could not be read: row 3 ('01/02/2026')",
        ),
        ("customer,date,stage\na,2026-01-01,lead\n", "no column 'customer_id'"),
        (
            "customer_id,date,stage\na,2026-01-01,lead\na,2026-01-02,churned\n",
            "the funnel's stages do not match the data: 'churned'",
        ),
    ],
    ids=["two-stages", "single-rows", "bad-date", "missing-column", "unknown-stage"],
)
def test_bad_snapshots(tmp_path, text, message):
    path = tmp_path / "crm.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        read_snapshots(path, stages=("lead", "won"))
    assert message in str(err.value) and len(err.value.problems) == 1


# ---------------------------------------------------------------- agent-engine logs, combine


@pytest.fixture(scope="module")
def agent_log(tmp_path_factory) -> tuple[Path, tuple[str, ...]]:
    """`funnelsim simulate --journeys` output: the bike shop's customers over its horizon."""
    from funnelsim.scenario.loader import load_scenario
    from funnelsim.scenario.outputs import write_table
    from funnelsim.scenario.runner import run

    result = run(
        load_scenario(SCENARIOS / "bike_shop.yaml"),
        replicates=1,
        seed=3,
        engine="agents",
        record_journeys=True,
    )
    path = write_table(result.journeys["baseline"], tmp_path_factory.mktemp("sim") / "log.csv")
    stages = tuple(str(s) for s in result.dataset["stage"].values if s != "lost")
    return path, stages


def test_agent_engine_log_round_trip(agent_log):
    path, stages = agent_log
    got = read_events(path, stages=stages, chunk_rows=4_000)
    whole = pd.read_csv(path, parse_dates=["timestamp"])
    assert_same(got, journey_stats(whole, stages))
    assert got.n_events == len(whole) > 10_000 and got.tails_count.sum() > 0
    assert read_events(path).stages == got.stages  # the order the data shows is the funnel's


def test_combine_is_associative(log):
    """((A + B) + C) and (A + (B + C)) give the same statistics, for any cut points."""
    from funnelsim.inference.stats import bin_width_ns, combine, finish, summarize_chunk

    names = STAGES + ("lost",)
    segs, chans = sorted(set(log.segment)), sorted(set(log.channel))

    def summary(part: pd.DataFrame):
        return summarize_chunk(
            part["customer_id"].to_numpy(object),
            part["timestamp"].to_numpy("datetime64[ns]").astype(np.int64),
            pd.Categorical(part["stage"], names).codes.astype(np.int64),
            pd.Categorical(part["segment"], segs).codes.astype(np.int64),
            pd.Categorical(part["channel"], chans).codes.astype(np.int64),
            part.index.to_numpy() + 2,
            stages=names,
            segments=segs,
            channels=chans,
            bin_ns=bin_width_ns(1.0),
        )

    a, b, c = (summary(log.iloc[i:j]) for i, j in ((0, 311), (311, 1207), (1207, len(log))))
    left, right = combine(combine(a, b), c), combine(a, combine(b, c))
    assert_same(finish(left, STAGES), finish(right, STAGES))
    assert_same(finish(left, STAGES), journey_stats(log, STAGES))


def test_integer_and_text_ids_across_chunks(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(
        "customer_id,timestamp,stage\n1,2026-03-01,awareness\n2,2026-03-01,awareness\n"
        "007,2026-03-02,awareness\nx9,2026-03-03,interest\n1,2026-03-04,interest\n"
        "7,2026-03-05,interest\n"
    )
    s = read_events(path, stages=STAGES, chunk_rows=2)
    # '007' and '7' are different customers; 1 moves on in a later chunk
    assert s.n_customers == 5 and int(s.transitions.sum()) == 1


@pytest.mark.parametrize(
    ("name", "content", "message", "line"),
    [
        (
            "ragged.csv",
            b"customer_id,timestamp,stage\n1,2026-03-01,awareness\n2,2026-03-01\n"
            b"3,2026-03-01,a,b\n",
            "2 row(s) do not have the header's 3 cells: row 3 ('2,2026-03-01')",
            3,
        ),
        (
            "semi.csv",
            b"customer_id;timestamp;stage\n1;2026-03-01;awareness\n",
            "looks semicolon-separated",
            1,
        ),
        ("latin.csv", b"customer_id,timestamp,stage\n1,2026-03-01,caf\xe9\n", "cannot read", None),
        ("fake.parquet", b"not parquet", "cannot read the file", None),
        (
            "noid.csv",
            b"customer_id,timestamp,stage\n,2026-03-01,awareness\n1,2026-03-02,awareness\n",
            "1 customer_id is empty: row 2 ('')",
            2,
        ),
    ],
    ids=["ragged", "semicolons", "not-utf8", "not-parquet", "empty-id"],
)
def test_unreadable_files(tmp_path, name, content, message, line):
    path = tmp_path / name
    path.write_bytes(content)
    err = error_of(path)
    assert message in str(err) and err.problems[0].line == line


@pytest.mark.parametrize(
    "name",
    [
        "funnelsim.data.events",
        "funnelsim.data.snapshots",
        "funnelsim.data.stagemap",
        "funnelsim.inference.stats",
    ],
)
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_snapshots_with_a_stage_map_and_integer_ids(tmp_path):
    path = tmp_path / "crm.parquet"
    pd.DataFrame(
        {
            "customer_id": ["10", "10", "10", "2", "2"],
            "date": ["2026-01-01", "2026-01-08T09:00:00", "2026-01-20", "2026-01-02", "2026-01-09"],
            "stage": ["MQL", "SQL", "heartbeat", "MQL", "Closed Won"],
        }
    ).to_parquet(path, index=False)
    smap = {"MQL": "lead", "SQL": "qualified", "Closed Won": "won", "heartbeat": None}
    df = read_snapshots(path, stage_map=smap, stages=("lead", "qualified", "won"))
    assert df["customer_id"].tolist() == [2, 2, 10, 10]  # numeric ids sort as numbers
    assert df["stage"].tolist() == ["lead", "won", "lead", "qualified"]
    assert df["date"].tolist()[3] == pd.Timestamp("2026-01-08 09:00")
    assert df.attrs["unmapped"] == {}


def test_out_of_order_across_distant_chunks(tmp_path):
    """Customer a's rows are in chunks 1 and 4 (of 2 rows): the tree of combines still
    joins them, and names both rows."""
    rows = [
        "a,2026-03-09,interest",
        "b,2026-03-01,awareness",
        "c,2026-03-01,awareness",
        "d,2026-03-02,awareness",
        "e,2026-03-02,awareness",
        "f,2026-03-03,awareness",
        "g,2026-03-03,awareness",
        "a,2026-03-04,desire",
    ]
    path = tmp_path / "log.csv"
    path.write_text("customer_id,timestamp,stage\n" + "\n".join(rows) + "\n")
    err = error_of(path, chunk_rows=2)
    assert "customer 'a': the event on row 9 is earlier than the one on row 2" in str(err)
