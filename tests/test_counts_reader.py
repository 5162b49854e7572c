"""The aggregate counts and spend reader: a dashboard's long table becomes the (segment,
period, series) cube and per-day spend, and every kind of bad input gets one located
message with a hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from funnelsim.data.counts import CountData, load_counts, read_count_spend, read_counts
from funnelsim.data.stagemap import parse_columns
from funnelsim.errors import ScenarioError

STAGES = ("awareness", "interest", "conversion", "lost")
WEEKS = pd.date_range("2024-01-01", periods=4, freq="7D")


def dashboard(weeks=WEEKS, segments=("all",), occupancy=("conversion",)) -> pd.DataFrame:
    """Weekly entries of every stage (plus occupancy of some), counts that tell rows apart:
    1000·stage + 100·kind + 10·segment + week."""
    rows = []
    for g, seg in enumerate(segments):
        for s, stage in enumerate(STAGES[:3]):
            for k, kind in enumerate(("entries", "occupancy")):
                if kind == "occupancy" and stage not in occupancy:
                    continue
                for t, week in enumerate(weeks):
                    rows.append(
                        (week.date().isoformat(), stage, 1000 * s + 100 * k + 10 * g + t, kind, seg)
                    )
    return pd.DataFrame(rows, columns=["period", "stage", "count", "kind", "segment"])


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def csv_of(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


SPEND = (
    "date,tv,social\n2023-12-25,70,0\n2024-01-01,140,7\n2024-01-08,0,14\n2024-01-15,7,0\n"
    "2024-01-22,0,0\n"
)


# ---------------------------------------------------------------- what a good file gives


def test_weekly_counts_with_segments_and_occupancy(tmp_path):
    df = dashboard(segments=("retail", "pro"))
    shuffled = df.sample(frac=1.0, random_state=1)  # row order does not matter
    path = write(tmp_path / "counts.csv", csv_of(shuffled))
    data = load_counts(path, write(tmp_path / "spend.csv", SPEND), stages=STAGES)
    assert isinstance(data, CountData)
    assert (data.period_days, data.n_periods, data.n_days) == (7, 4, 28)
    assert list(data.dates) == list(WEEKS) and data.file == "counts.csv"
    assert data.stages == ("awareness", "interest", "conversion")
    assert data.segments == ("retail", "pro") or data.segments == ("pro", "retail")
    assert data.series == (
        ("awareness", "entries"),
        ("interest", "entries"),
        ("conversion", "entries"),
        ("conversion", "occupancy"),
    )
    assert data.counts.dtype == np.float64 and data.counts.shape == (2, 4, 4)
    g = data.segments.index("pro")
    # pro is segment 1 in the generator: 1000·stage + 100·kind + 10 + week
    assert data.counts[g, :, 3].tolist() == [2110, 2111, 2112, 2113]
    assert data.counts[g, 2, :].tolist() == [12, 1012, 2012, 2112]


def test_spend_per_period_is_spread_over_its_days(tmp_path):
    path = write(tmp_path / "counts.csv", csv_of(dashboard(occupancy=())))
    data = load_counts(path, write(tmp_path / "spend.csv", SPEND), stages=STAGES)
    assert data.campaigns == ("tv", "social")
    # the row before the first period is kept (carryover); the one after the last dropped
    assert data.spend_start == pd.Timestamp("2023-12-25") and data.spend.shape == (2, 35)
    assert data.spend[0].tolist() == [10] * 7 + [20] * 7 + [0] * 7 + [1] * 7 + [0] * 7
    assert data.spend[1].tolist() == [0] * 7 + [1] * 7 + [2] * 7 + [0] * 14
    # the period totals survive the spreading
    assert data.spend[:, 7:].reshape(2, 4, 7).sum(axis=2).tolist() == [
        [140, 0, 7, 0],
        [7, 14, 0, 0],
    ]


def test_daily_spend_and_daily_counts(tmp_path):
    days = pd.date_range("2024-03-01", periods=10, freq="D")
    path = write(tmp_path / "counts.csv", csv_of(dashboard(weeks=days, occupancy=())))
    spend_days = pd.date_range("2024-02-27", "2024-03-12", freq="D")  # 3 before, 2 after
    spend = pd.DataFrame({"date": spend_days.date, "tv": np.arange(len(spend_days), dtype=float)})
    data = load_counts(path, write(tmp_path / "s.csv", csv_of(spend)), stages=STAGES)
    assert data.period_days == 1 and data.spend_start == pd.Timestamp("2024-02-27")
    assert data.spend.tolist() == [list(np.arange(13.0))]


def test_daily_spend_rows_under_weekly_counts(tmp_path):
    days = pd.date_range("2024-01-01", periods=28, freq="D")
    spend = pd.DataFrame({"date": days.date, "tv": np.arange(28.0) % 5 + 1})
    names, daily, start = read_count_spend(
        write(tmp_path / "s.csv", csv_of(spend)), dates=WEEKS, period_days=7
    )
    assert names == ("tv",) and start == WEEKS[0] and daily[0].tolist() == spend["tv"].tolist()


def test_parquet_equals_csv_and_columns_are_mapped(tmp_path):
    df = dashboard().rename(columns={"period": "week", "stage": "metric", "count": "value"})
    write(tmp_path / "counts.csv", csv_of(df))
    df.assign(week=pd.to_datetime(df["week"]).dt.date).to_parquet(tmp_path / "counts.parquet")
    cols = "period=week,stage=metric,count=value"
    a = read_counts(tmp_path / "counts.parquet", stages=STAGES, columns=cols)
    b = read_counts(tmp_path / "counts.csv", stages=STAGES, columns=cols)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["period", "stage", "kind", "segment", "count"]
    assert a["period"].dtype == "datetime64[ns]" and (a["segment"] == "all").all()
    assert parse_columns("period=week", kind="counts") == {"period": "week"}
    with pytest.raises(ScenarioError, match=r"did you mean count=value\?"):
        parse_columns("value=count", kind="counts")  # the other way round


def test_kind_defaults_to_entries_and_latent_stages(tmp_path):
    df = dashboard(occupancy=())
    df = df[df.stage != "interest"].drop(columns=["kind", "segment"])
    data = load_counts(write(tmp_path / "c.csv", csv_of(df)), stages=STAGES, latent=["interest"])
    assert data.stages == ("awareness", "interest", "conversion")  # latent stages are modelled
    assert data.series == (("awareness", "entries"), ("conversion", "entries"))
    assert data.campaigns == () and data.spend.shape == (0, 28)


def test_kind_is_read_loosely_and_spend_from_parquet(tmp_path):
    df = dashboard().astype(str)
    df.loc[df.kind == "entries", "kind"] = ["", " Entries"] * 6
    spend = pd.read_csv(write(tmp_path / "spend.csv", SPEND), parse_dates=["date"])
    spend.to_parquet(tmp_path / "spend.parquet", index=False)
    path = write(tmp_path / "counts.csv", csv_of(df))
    data = load_counts(path, tmp_path / "spend.parquet", stages=STAGES)
    want = load_counts(write(tmp_path / "c2.csv", csv_of(dashboard())), tmp_path / "spend.csv",
                       stages=STAGES)  # fmt: skip
    assert data.series == want.series and data.campaigns == want.campaigns
    np.testing.assert_array_equal(data.counts, want.counts)
    np.testing.assert_array_equal(data.spend, want.spend)


def test_head_keeps_spend_whole(tmp_path):
    path = write(tmp_path / "counts.csv", csv_of(dashboard()))
    data = load_counts(path, write(tmp_path / "spend.csv", SPEND), stages=STAGES)
    head = data.head(3)
    assert head.n_periods == 3 and list(head.dates) == list(WEEKS[:3])
    np.testing.assert_array_equal(head.counts, data.counts[:, :3])
    assert head.spend is data.spend and head.n_days == 21
    with pytest.raises(ValueError, match="from 1 to 4"):
        data.head(5)


# ---------------------------------------------------------------- bad counts files


def counts_error(tmp_path: Path, text: str, name: str = "counts.csv", **kw) -> ScenarioError:
    path = write(tmp_path / name, text)
    kw.setdefault("stages", STAGES)
    with pytest.raises(ScenarioError) as err:
        load_counts(path, **kw)
    assert err.value.source == str(path)
    assert all(p.file == str(path) for p in err.value.problems if p.path != ("latent",))
    return err.value


def edit(df: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    """``df`` with data row ``row`` (file row ``row + 2``) changed, as text."""
    out = df.astype(str)
    for column, value in values.items():
        out.loc[row, column] = value
    return out


GOOD = dashboard()


@pytest.mark.parametrize(
    ("text", "message", "hint", "line"),
    [
        (
            "week,metric,count\n2024-01-01,awareness,1\n",
            "no column 'period', 'stage' (the file has: week, metric, count)",
            "--columns period=week,stage=metric,count=value",
            1,
        ),
        (
            "period,stage,cout\n2024-01-01,awareness,1\n",
            "no column 'count' (the file has: period, stage, cout)",
            "'count': did you mean 'cout'?; map your columns with --columns period=week,",
            1,
        ),
        ("", "the file is empty", "--columns period=", None),
        ("period,stage,count\n", "the file has a header but no rows", "--columns", None),
        (
            "period;stage;count\n2024-01-01;awareness;1\n",
            "looks semicolon-separated",
            "comma-separated",
            1,
        ),
        (
            csv_of(edit(GOOD, 3, period="01/22/2024").assign(stage=GOOD.stage)),
            "1 period date(s) could not be read: row 5 ('01/22/2024')",
            "YYYY-MM-DD",
            5,
        ),
        (
            csv_of(edit(edit(GOOD, 2, count="12.5"), 6, count="7.25")),
            "2 count(s) are not whole numbers: row 4 ('12.5'), row 8 ('7.25')",
            "whole numbers of people",
            4,
        ),
        (
            csv_of(edit(GOOD, 5, count="1,234")),
            "1 count(s) are written with thousands separators: row 7 ('1,234')",
            "plain numbers: 1234, not 1,234",
            7,
        ),
        (
            csv_of(GOOD.astype(str)).replace("interest,1003,", "interest,1,003,"),
            "1 count(s) are written with thousands separators: row 9 ('1,003')",
            "plain numbers: 1234, not 1,234",
            9,
        ),
        (
            csv_of(edit(GOOD, 9, count="-40")),
            "1 count(s) are negative: row 11 ('-40')",
            "zero or more",
            11,
        ),
        (
            csv_of(edit(GOOD, 1, count="n/a")),
            "1 count(s) are not numbers: row 3 ('n/a')",
            "whole numbers such as 1234",
            3,
        ),
        (
            csv_of(edit(edit(GOOD, 0, kind="entry"), 1, kind="entry")),
            "2 row(s) have kind 'entry', which is neither entries nor occupancy: row 2",
            "did you mean 'entries'?",
            2,
        ),
        (
            csv_of(pd.concat([GOOD, GOOD.iloc[[2]]])),
            "1 (period, stage, kind, segment) combination(s) appear on several rows: "
            "rows 4, 18 (2024-01-15, awareness, entries, all)",
            "one row per period, stage, kind and segment",
            4,
        ),
        (
            csv_of(GOOD.assign(stage=GOOD.stage.replace("interest", "intrest"))),
            "4 row(s) have stage 'intrest', which is not a stage of the funnel "
            "(awareness, interest, conversion): row 6",
            "did you mean 'interest'?",
            6,
        ),
    ],
    ids=[
        "missing-columns",
        "misspelt-column",
        "empty",
        "header-only",
        "semicolons",
        "bad-date",
        "fractions",
        "quoted-thousands",
        "unquoted-thousands",
        "negative",
        "not-a-number",
        "bad-kind",
        "duplicate",
        "unknown-stage",
    ],
)
def test_bad_counts(tmp_path, text, message, hint, line):
    err = counts_error(tmp_path, text)
    assert len(err.problems) == 1, str(err)
    problem = err.problems[0]
    assert message in problem.message and hint in problem.hint, str(err)
    assert problem.line == line


def test_independent_faults_are_listed_together(tmp_path):
    bad = edit(edit(edit(GOOD, 1, count="-3"), 4, period="2024-13-01"), 7, kind="stock")
    err = counts_error(tmp_path, csv_of(bad))
    assert [p.path for p in err.problems] == [("period",), ("count",), ("kind",)]
    assert [p.line for p in err.problems] == [6, 3, 9]


def test_funnel_stages_missing_from_the_counts(tmp_path):
    df = GOOD[GOOD.stage == "awareness"]
    err = counts_error(tmp_path, csv_of(df))
    (problem,) = err.problems
    assert "funnel stage(s) 'interest', 'conversion' have no counts" in problem.message
    assert "the file counts awareness" in problem.message
    assert problem.hint.startswith(
        "list stages the dashboard does not count under `latent:` in the priors file"
    )
    assert "latent: [interest, conversion]" in problem.hint


def test_latent_stage_with_counts_and_unknown_latent_stage(tmp_path):
    err = counts_error(tmp_path, csv_of(GOOD), latent=["interest"])
    (problem,) = err.problems
    assert "4 row(s) count stage 'interest', which the priors file lists under `latent:`" in (
        problem.message
    )
    assert "remove it from `latent:`" in problem.hint and problem.line == 6
    err = counts_error(tmp_path, csv_of(GOOD), latent=["intrest"])
    assert "latent stage 'intrest' is not a stage of the funnel" in str(err)
    assert "did you mean 'interest'?" in err.problems[0].hint and len(err.problems) == 1


def test_lost_is_not_counted(tmp_path):
    df = pd.concat([GOOD, GOOD[GOOD.stage == "awareness"].assign(stage="lost")])
    err = counts_error(tmp_path, csv_of(df))
    assert "stage 'lost'" in str(err) and "`lost` is not counted" in err.problems[0].hint


@pytest.mark.parametrize(
    ("weeks", "message", "hint"),
    [
        (
            WEEKS.delete(2),
            "the periods have gaps: no rows at all for 1 week(s): 2024-01-15",
            "give a row for every period",
        ),
        (
            WEEKS[:3].append(pd.DatetimeIndex(["2024-01-23"])),
            "1 period date(s) are not a whole number of weeks after the first (2024-01-01): "
            "row 5 ('2024-01-23')",
            "same weekday",
        ),
        (
            pd.date_range("2024-01-01", periods=4, freq="MS"),
            "the periods are monthly",
            "one row per day or per week",
        ),
        (
            pd.date_range("2024-01-01", periods=4, freq="14D"),
            "the periods are 14 days apart",
            "one row per day or per week",
        ),
        (WEEKS[:1], "only one period (2024-01-01)", "at least two periods"),
    ],
    ids=["gap", "off-weekday", "monthly", "fortnightly", "one-period"],
)
def test_periods_with_gaps(tmp_path, weeks, message, hint):
    err = counts_error(tmp_path, csv_of(dashboard(weeks=weeks)))
    assert len(err.problems) == 1 and message in err.problems[0].message, str(err)
    assert hint in err.problems[0].hint


def test_a_series_missing_some_periods_is_named(tmp_path):
    df = dashboard(segments=("retail", "pro"))
    drop = (df.stage == "conversion") & (df.kind == "occupancy") & (df.segment == "pro")
    df = df[~(drop & df.period.isin(["2024-01-08", "2024-01-22"]))]
    df = df[~((df.stage == "interest") & (df.segment == "retail") & (df.period == "2024-01-01"))]
    err = counts_error(tmp_path, csv_of(df))
    messages = [p.message for p in err.problems]
    assert messages == [
        "series interest entries (segment retail) has no rows for 1 of the 4 weeks: 2024-01-01",
        "series conversion occupancy (segment pro) has no rows for 2 of the 4 weeks: "
        "2024-01-08, 2024-01-22",
    ]
    assert all("0 when nothing happened" in p.hint for p in err.problems)


# ---------------------------------------------------------------- bad spend files


def spend_error(tmp_path: Path, spend: str | None, name: str = "spend.csv", **kw) -> ScenarioError:
    counts = write(tmp_path / "counts.csv", csv_of(GOOD))
    path = tmp_path / name
    if spend is not None:
        write(path, spend)
    with pytest.raises(ScenarioError) as err:
        load_counts(counts, path, stages=STAGES, **kw)
    return err.value


@pytest.mark.parametrize(
    ("spend", "message", "hint", "line"),
    [
        (None, "spend file not found", "check the path", None),
        (
            "day,tv\n2024-01-01,1\n",
            "no `date` column (the file has: day, tv)",
            "rename 'day' to `date`",
            1,
        ),
        ("date;tv\n2024-01-01;1\n", "looks semicolon-separated", "comma-separated", 1),
        ("date,tv\n", "the spend file has no rows", "date,<campaign>", None),
        (
            SPEND.replace("2024-01-08", "08/01/2024"),
            "1 date(s) could not be read: row 4 ('08/01/2024')",
            "YYYY-MM-DD",
            4,
        ),
        (
            SPEND.replace("140,7", "abc,7"),
            "1 value(s) in column 'tv' are not numbers: row 3 ('abc')",
            "plain numbers",
            3,
        ),
        (
            SPEND.replace("140,7", '"$1,140",7'),
            "1 value(s) in column 'tv' are written with currency signs or separators: "
            "row 3 ('$1,140')",
            "not $1,150.50",
            3,
        ),
        (
            SPEND.replace("0,14", "-5,14"),
            "1 value(s) in column 'tv' are negative: row 4 ('-5')",
            "zero or more",
            4,
        ),
        (
            SPEND.replace("2024-01-15", "2024-01-08"),
            "1 date(s) appear twice: row 5 ('2024-01-08')",
            "one row per date",
            5,
        ),
        (
            SPEND.replace("2024-01-15,7,0\n", ""),
            "1 period(s) have no spend row: 2024-01-15",
            "0 where a campaign did not run",
            None,
        ),
        (
            SPEND.replace("2024-01-15", "2024-01-16"),
            "1 date(s) are not the start of a period of the counts",
            "each period's start date",
            5,
        ),
        (
            "date,tv\n2024-01-01,1\n2024-01-04,1\n2024-01-07,1\n",
            "the spend rows are 3 days apart",
            "or one per period (7 days) on its start date",
            None,
        ),
        (
            SPEND.replace(",social", ",radio").replace(",7\n", ",0\n").replace(",14", ",0"),
            "campaign 'radio' has zero spend in every period of the counts "
            "(2024-01-01 to 2024-01-28)",
            "its effect cannot be learned: drop the column or add the weeks it ran",
            1,
        ),
    ],
    ids=[
        "missing-file",
        "no-date",
        "semicolons",
        "no-rows",
        "bad-date",
        "not-a-number",
        "money",
        "negative",
        "duplicate-date",
        "uncovered-period",
        "off-period-date",
        "spacing",
        "zero-spend",
    ],
)
def test_bad_spend(tmp_path, spend, message, hint, line):
    err = spend_error(tmp_path, spend)
    assert len(err.problems) == 1, str(err)
    problem = err.problems[0]
    assert message in problem.message and hint in problem.hint, str(err)
    assert problem.line == line


def test_spend_for_unknown_campaigns_and_campaigns_without_spend(tmp_path):
    spend = SPEND.replace(",social", ",socail")
    err = spend_error(tmp_path, spend, campaigns=["tv", "social", "email"])
    assert [p.message for p in err.problems] == [
        "spend column 'socail' is not a campaign of the priors file (tv, social, email)",
        "campaign 'email' of the priors file has no spend column",
    ]  # the typo is reported once, not also as `social` without a column
    assert err.problems[0].hint.startswith("did you mean 'social'?")
    assert "`campaigns:` in the priors file" in err.problems[0].hint
    assert "add a column email" in err.problems[1].hint


def test_campaigns_without_a_spend_file(tmp_path):
    counts = write(tmp_path / "counts.csv", csv_of(GOOD))
    with pytest.raises(ScenarioError) as err:
        load_counts(counts, stages=STAGES, campaigns=["tv"])
    assert "declares campaigns (tv) but no spend file" in str(err.value)
    assert "--spend SPEND.csv" in err.value.problems[0].hint


def test_spend_rows_are_checked_together(tmp_path):
    spend = SPEND.replace("140,7", "-1,x").replace("2024-01-08", "soon")
    err = spend_error(tmp_path, spend)
    assert [(p.path, p.line) for p in err.problems] == [
        (("date",), 4),
        (("spend", "tv"), 3),
        (("spend", "social"), 3),
    ]


def test_docstring_examples():
    import doctest

    import funnelsim.data.counts as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
