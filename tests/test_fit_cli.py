"""`funnelsim fit` as a planner uses it: simulate a history with the agent engine, fit
it, read the tables, forecast from the fit — and the mistakes a hurried planner makes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from funnelsim.cli import app
from tests.conftest import SCENARIOS

runner = CliRunner()


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 6,000 customers of the bike-shop journey over 120 days, every exit recorded."""
    folder = tmp_path_factory.mktemp("history")
    raw = yaml.safe_load((SCENARIOS / "bike_shop.yaml").read_text())
    raw.pop("population", None)
    raw["horizon"] = {"start": "2026-01-01", "periods": 120, "step": "day"}
    raw["arrivals"] = {"per_day": 50, "stage": "awareness"}
    raw["seed"] = 11
    scenario = folder / "truth.yaml"
    scenario.write_text(yaml.safe_dump(raw, sort_keys=False))
    log = folder / "journeys.csv"
    result = runner.invoke(
        app, ["simulate", str(scenario), "--journeys", str(log), "--record-lost", "-q"]
    )
    assert result.exit_code == 0, result.output
    return log


def test_fit_writes_tables_report_and_a_starter_scenario(history: Path, tmp_path: Path) -> None:
    fit = tmp_path / "fits" / "bike.nc"
    starter = tmp_path / "forecast.yaml"
    result = runner.invoke(
        app,
        ["fit", str(history), "-o", str(fit), "--scenario-out", str(starter), "--seed", "3"],
        terminal_width=80,
    )
    assert result.exit_code == 0, result.output
    text = _flat(result.output)
    assert "converged" in text and "awareness" in text
    rates = pd.read_csv(tmp_path / "fits" / "bike.rates.csv")
    assert list(rates.columns) == [
        "segment",
        "source",
        "target",
        "rate_mean",
        "rate_hdi_low",
        "rate_hdi_high",
    ]
    truth = {("awareness", "interest"): 0.35 / 14, ("desire", "conversion"): 0.30 / 7}
    for (a, b), rate in truth.items():
        row = rates[(rates.source == a) & (rates.target == b)].iloc[0]
        assert row.rate_hdi_low < rate < row.rate_hdi_high, (a, b, row.to_dict())
    assert not (tmp_path / "fits" / "bike.effects.csv").exists()  # no campaigns fitted
    assert "<html" in (tmp_path / "fits" / "bike.report.html").read_text()
    # the starter scenario runs as written
    forecast = runner.invoke(
        app, ["run", str(starter), "-o", str(tmp_path / "out"), "-n", "50", "--no-plots", "-q"]
    )
    assert forecast.exit_code == 0, forecast.output
    assert (tmp_path / "out" / "summary.csv").is_file()


def test_a_users_file_in_the_way_is_refused_before_fitting(history: Path, tmp_path: Path) -> None:
    mine = tmp_path / "fit.rates.csv"
    mine.write_text("my numbers\n")
    result = runner.invoke(app, ["fit", str(history), "-o", str(tmp_path / "fit.nc")])
    assert result.exit_code == 2
    assert "funnelsim did not write it" in _flat(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.rates.csv"]
    assert mine.read_text() == "my numbers\n"


def _broken(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "args", "expect"),
    [
        ("user,ts,event\n1,2026-01-01,awareness\n", [], "customer_id"),
        (
            "customer_id,timestamp,stage\n1,2026-01-01,awareness\n1,2026-13-45,interest\n",
            [],
            "row 3",
        ),
        (
            "customer_id,timestamp,stage\n1,2026-01-02,awareness\n1,2026-01-01,interest\n",
            [],
            "earlier than the one on row 2",
        ),
        (
            "customer_id,timestamp,stage\n1,2026-01-01,awareness\n1,2026-01-03,checkout\n",
            ["--funnel", "bike_shop"],
            "checkout",
        ),
    ],
    ids=["missing-columns", "bad-timestamp", "out-of-order", "stages-do-not-match"],
)
def test_bad_event_logs_get_one_clear_message(
    tmp_path: Path, text: str, args: list[str], expect: str
) -> None:
    data = _broken(tmp_path, text)
    result = runner.invoke(app, ["fit", str(data), "-o", str(tmp_path / "fit.nc"), *args])
    assert result.exit_code == 2, result.output
    assert expect in _flat(result.output)
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


def test_column_mapping_and_stage_map(history: Path, tmp_path: Path) -> None:
    log = pd.read_csv(history)
    raw_names = {
        "awareness": "first_visit",
        "interest": "view_item",
        "desire": "add_to_cart",
        "conversion": "purchase",
        "advocacy": "review",
        "lost": "unsubscribe",
    }
    renamed = log.rename(columns={"customer_id": "user", "timestamp": "ts", "stage": "event"})
    renamed["event"] = renamed["event"].map(raw_names)
    renamed.loc[renamed.index[:7], "event"] = "page_ping"  # not in the map: counted, skipped
    data = tmp_path / "export.csv"
    renamed.to_csv(data, index=False)
    stage_map = tmp_path / "map.yaml"
    stage_map.write_text(yaml.safe_dump({v: k for k, v in raw_names.items()}))
    result = runner.invoke(
        app,
        [
            "fit",
            str(data),
            "--columns",
            "customer_id=user,timestamp=ts,stage=event",
            "--stage-map",
            str(stage_map),
            "-o",
            str(tmp_path / "fit.nc"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "page_ping" in _flat(result.output)
    rates = pd.read_csv(tmp_path / "fit.rates.csv")
    assert set(rates.source) == {"awareness", "interest", "desire", "conversion", "advocacy"}
    assert np.isfinite(rates.rate_mean).all()


def test_snapshot_fit_round_trip_through_the_command(tmp_path: Path) -> None:
    """CRM snapshots → `funnelsim fit --kind snapshots` → a fit file that loads (its
    hash holds after NetCDF turns text coordinates into another dtype) and forecasts."""
    from funnelsim.inference.fitted import FittedFunnel
    from tests.test_fit_snapshots import TRUTH, write_crm_example

    _, data, funnel = write_crm_example(tmp_path)
    result = runner.invoke(
        app,
        [
            "fit", str(data), "--kind", "snapshots", "--funnel", str(funnel),
            "--sampler", "pymc", "--draws", "500", "--tune", "500", "--chains", "2",
            "--seed", "4", "-o", str(tmp_path / "crm.nc"), "--scenario-out",
            str(tmp_path / "forecast.yaml"), "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fit = FittedFunnel.load(tmp_path / "crm.nc")
    assert fit.kind == "snapshots" and fit.goal == "purchase"
    table = fit.rates().set_index(["source", "target"])
    for a, row in TRUTH.items():
        for b, rate in row.items():
            lo, hi = table.loc[(a, b), ["rate_hdi_low", "rate_hdi_high"]]
            width = hi - lo
            assert lo - width < rate < hi + width, (a, b, lo, hi)  # 94% HDI, widened once
    forecast = runner.invoke(
        app, ["run", str(tmp_path / "forecast.yaml"), "-o", str(tmp_path / "out"), "-n", "20",
              "--no-plots", "-q"],
    )  # fmt: skip
    assert forecast.exit_code == 0, forecast.output
