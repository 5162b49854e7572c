"""FittedFunnel files and forecasts from fits, on posteriors made without MCMC (the
machinery is checked here; the samplers are checked in their own tests)."""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.errors import EngineMismatch, ScenarioError
from funnelsim.funnel import Funnel
from funnelsim.inference.fitted import FitFileError, FittedFunnel
from funnelsim.io import OutputRefused, write_files
from funnelsim.scenario import load_scenario
from funnelsim.scenario.runner import run
from tests.conftest import bike_journey

runner = CliRunner()


def fake_fit(
    funnel: Funnel,
    *,
    chains: int = 2,
    draws: int = 300,
    spread: float = 0.1,
    seed: int = 0,
    lifts: dict[tuple[str, str], float] | None = None,
) -> FittedFunnel:
    """A posterior of log-normal noise around ``funnel``'s rates (and campaign lifts)."""
    rng = np.random.default_rng(seed)
    edges = funnel.edges
    base = np.array([funnel.rate(a, b) for a, b in edges])
    rate = base * np.exp(spread * rng.standard_normal((chains, draws, 1, len(edges))))
    posterior = {"rate": rate}
    dims = {"rate": ["segment", "edge"]}
    coords: dict = {"segment": ["all"], "edge": [f"{a} -> {b}" for a, b in edges]}
    if lifts:
        keys = list(lifts)
        posterior["lift"] = np.array([lifts[k] for k in keys]) * np.exp(
            spread * rng.standard_normal((chains, draws, len(keys)))
        )
        dims["lift"] = ["effect"]
        coords["effect"] = [f"{c}: {t}" for c, t in keys]
    idata = az.from_dict(
        posterior=posterior,
        dims=dims,
        coords=coords,
        sample_stats={"diverging": np.zeros((chains, draws), bool)},
    )
    if lifts:
        idata.posterior = idata.posterior.assign_coords(
            campaign=("effect", [c for c, _ in lifts]), target=("effect", [t for _, t in lifts])
        )
    idata.attrs.update({"method": "test", "sampler": "exact", "notes": json.dumps(["a note"])})
    return FittedFunnel(
        idata, stages=funnel.stages, goal=funnel.goal, entry=funnel.entry, kind="journeys"
    )


@pytest.fixture
def fit_file(tmp_path: Path) -> Path:
    path = tmp_path / "fit.nc"
    fake_fit(bike_journey(), lifts={("promo", "desire -> conversion"): 1.6}).save(path)
    return path


def test_fit_file_round_trip(fit_file: Path) -> None:
    loaded = FittedFunnel.load(fit_file)
    funnel = bike_journey()
    assert loaded.stages == funnel.stages and loaded.goal == "conversion"
    assert loaded.edges == funnel.edges
    table = loaded.rates()
    assert list(table.columns) == [
        "segment",
        "source",
        "target",
        "rate_mean",
        "rate_hdi_low",
        "rate_hdi_high",
    ]
    truth = np.array([funnel.rate(a, b) for a, b in funnel.edges])
    # log-normal noise of sd 0.1: the mean is truth · e^{0.005}, within 4 MC standard errors
    se = truth * 0.1 / np.sqrt(loaded.n_draws)
    np.testing.assert_array_less(np.abs(table["rate_mean"] - truth * np.exp(0.005)), 4 * se)
    assert (table["rate_hdi_low"] < truth).all() and (truth < table["rate_hdi_high"]).all()
    effects = loaded.effects()
    assert effects[["campaign", "target"]].values.tolist() == [["promo", "desire -> conversion"]]
    assert loaded.notes == ["a note"]
    assert loaded.diagnostics().ok


def test_rate_draws_follow_the_posterior_order_and_cycle(fit_file: Path) -> None:
    fit = FittedFunnel.load(fit_file)
    flat = fit.idata.posterior["rate"].values.reshape(fit.n_draws, 1, -1)
    draws = fit.rate_draws(fit.n_draws + 3)
    i, j = fit.stages.index("desire"), fit.stages.index("conversion")
    k = fit.edges.index(("desire", "conversion"))
    assert draws[5, 0, i, j] == flat[5, 0, k]
    assert draws[fit.n_draws + 2, 0, i, j] == flat[2, 0, k]  # cycles


def test_a_changed_fit_file_is_refused(fit_file: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(fit_file, "a") as ds:
        ds["posterior"]["rate"][0, 0, 0, 0] = 0.5
    with pytest.raises(FitFileError, match="changed since"):
        FittedFunnel.load(fit_file)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.nc"
    text.write_text("hello")
    with pytest.raises(FitFileError, match="not a NetCDF fit file"):
        FittedFunnel.load(text)
    plain = tmp_path / "plain.nc"
    az.from_dict(posterior={"rate": np.ones((1, 10, 1, 1))}).to_netcdf(str(plain))
    with pytest.raises(FitFileError, match="not a funnelsim fit"):
        FittedFunnel.load(plain)
    with pytest.raises(FitFileError, match="not found"):
        FittedFunnel.load(tmp_path / "missing.nc")


def test_diagnostics_flag_chains_that_disagree() -> None:
    fit = fake_fit(bike_journey(), chains=2, draws=200)
    rate = fit.idata.posterior["rate"]
    rate.values[1] *= 1.5  # the second chain sits elsewhere
    diag = fit.diagnostics()
    assert not diag.ok and diag.rhat_max > 1.01
    assert any("R-hat" in p for p in diag.problems)


def test_write_files_is_all_or_nothing(tmp_path: Path) -> None:
    mine = tmp_path / "fit.rates.csv"
    mine.write_text("my own table\n")
    writers = {tmp_path / "fit.nc": lambda p: p.write_text("x"), mine: lambda p: p.write_text("y")}
    with pytest.raises(OutputRefused):
        write_files(writers, by="fit")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.rates.csv"]
    assert mine.read_text() == "my own table\n"

    def broken(p: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_files(
            {tmp_path / "a.nc": lambda p: p.write_text("x"), tmp_path / "b.csv": broken}, by="fit"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.rates.csv"]


# ---------------------------------------------------------------------- forecasts from a fit
def _scenario(folder: Path, fit: str, **extra: object) -> Path:
    spec = {
        "name": "from a fit",
        "horizon": {"start": "2027-02-01", "periods": 20, "step": "day", "dt_days": 0.25},
        "fit": fit,
        "population": {"initial": {"awareness": 1000}},
        "replicates": 6,
        "seed": 5,
        "engine": "expected",
        **extra,
    }
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_replicate_r_runs_with_posterior_draw_r(fit_file: Path) -> None:
    """Closed cohort, expected engine: replicate r's occupancy after n steps is
    m0 · P_r^n with P_r the step matrix of draw r — a matrix power, computed here apart
    from the engines."""
    scenario = load_scenario(_scenario(fit_file.parent, fit_file.name))
    result = run(scenario)
    fit = FittedFunnel.load(fit_file)
    draws = fit.rate_draws(6)
    occupancy = result.dataset["occupancy"].sel(scenario="baseline").values  # (R, T, S)
    m0 = np.zeros(len(fit.stages))
    m0[0] = 1000
    for r in range(6):
        step = Funnel(fit.stages, draws[r, 0], goal="conversion").step_matrix(0.25)
        expected = m0 @ np.linalg.matrix_power(step, 80)
        np.testing.assert_allclose(occupancy[r, -1], expected, rtol=1e-9, atol=1e-9)
    assert occupancy[:, -1].std(axis=0).max() > 1  # draws differ, so replicates differ


def test_fitted_lifts_replace_the_scenario_lift(fit_file: Path) -> None:
    campaigns = {
        "promo": {"effects": [{"edge": "desire -> conversion", "lift": 1.0}]},
    }
    scenario = load_scenario(
        _scenario(fit_file.parent, fit_file.name, baseline={"campaigns": campaigns})
    )
    result = run(scenario)
    fit = FittedFunnel.load(fit_file)
    draws, lifts = fit.rate_draws(6), fit.lift_draws(6)[("promo", "desire -> conversion")]
    i, j = fit.stages.index("desire"), fit.stages.index("conversion")
    m0 = np.zeros(len(fit.stages))
    m0[0] = 1000
    occupancy = result.dataset["occupancy"].sel(scenario="baseline").values
    for r in range(3):
        rates = draws[r, 0].copy()
        rates[i, j] *= lifts[r]  # the campaign is on all horizon: pressure 1
        step = Funnel(fit.stages, rates, goal="conversion").step_matrix(0.25)
        np.testing.assert_allclose(
            occupancy[r, -1], m0 @ np.linalg.matrix_power(step, 80), rtol=1e-9, atol=1e-9
        )


def test_resolved_scenario_of_a_fit_reruns_identically(fit_file: Path, tmp_path: Path) -> None:
    path = _scenario(fit_file.parent, fit_file.name, engine="counts")
    out = tmp_path / "out"
    first = runner.invoke(app, ["run", str(path), "-o", str(out), "--no-plots", "-q"])
    assert first.exit_code == 0, first.output
    assert (out / "inputs" / "fit.nc").is_file()
    again = runner.invoke(
        app, ["run", str(out / "scenario.resolved.yaml"), "-o", str(tmp_path / "b"), "-q"]
    )
    assert again.exit_code == 0, again.output
    assert (out / "summary.csv").read_bytes() == (tmp_path / "b" / "summary.csv").read_bytes()


def test_fit_scenario_mistakes_are_located(fit_file: Path, tmp_path: Path) -> None:
    both = _scenario(fit_file.parent, fit_file.name, funnel="bike_shop")
    with pytest.raises(ScenarioError, match="takes its funnel from the fit"):
        load_scenario(both)
    missing = _scenario(tmp_path, "nowhere.nc")
    with pytest.raises(ScenarioError, match="fit file not found"):
        load_scenario(missing)
    result = runner.invoke(app, ["run", str(missing), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "fit file not found" in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()


def test_agents_engine_refuses_a_fit(fit_file: Path) -> None:
    scenario = load_scenario(_scenario(fit_file.parent, fit_file.name, engine="agents"))
    with pytest.raises(EngineMismatch, match="counts or expected"):
        run(scenario)


def test_text_coordinates_that_come_back_as_another_dtype_keep_the_hash(tmp_path: Path) -> None:
    """NetCDF returns object-dtype text coordinates as fixed-width unicode: the same
    content, so the file must still load."""
    fit = fake_fit(bike_journey())
    post = fit.idata.posterior
    fit.idata.posterior = post.assign_coords(
        edge=np.array(post["edge"].values.tolist(), dtype=object),
        segment=np.array(["all"], dtype=object),
    )
    assert fit.idata.posterior["edge"].dtype == object
    fit.save(tmp_path / "fit.nc")
    assert FittedFunnel.load(tmp_path / "fit.nc").rates().shape[0] == len(fit.edges)
