"""Outputs never destroy a file funnelsim did not write, and what ran can be run again.

Each story runs the real command line into a folder, then compares every byte (and
modification time) of the folder and of its parent with what was there before.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from funnelsim.cli import app
from funnelsim.io import MANIFEST, Manifest, OutputRefused, atomic_folder, write_file
from funnelsim.scenario import load_scenario, run, write_outputs

from .conftest import SCENARIOS

runner = CliRunner()

SMALL = """\
name: Small shop
horizon: {start: 2026-11-01, periods: 20, step: day}
funnel: bike_shop
population: {initial: {awareness: 500}}
arrivals: {per_day: 30, channels: {social: 0.6, search: 0.4}}
replicates: 10
seed: 7
"""

WITH_SPEND = (
    SMALL
    + """\
baseline:
  campaigns:
    radio:
      start: 2026-11-03
      end: 2026-11-12
      spend: {csv: spend.csv, column: radio}
      half_saturation: 100
      effects: [{edge: interest -> desire, lift: 1.6}]
variants:
  more_radio:
    campaigns:
      radio: {spend: {csv: data/spend.csv, column: radio}}
economics: {value_per_conversion: 200}
"""
)


def spend_csv(path: Path, per_day: float) -> None:
    """Daily spend for the radio window (2026-11-03 … 2026-11-12), one row per day."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"2026-11-{d:02d},{per_day + 10 * (d % 3):g}" for d in range(3, 13)]
    path.write_text("date,radio\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "project" / "small.yaml"
    path.parent.mkdir()
    path.write_text(SMALL, encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every file (bytes, mtime) and folder (None) under ``folder``, hidden ones too."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        if p.is_file()
        else None
        for p in folder.rglob("*")
    }


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def said(result, *texts: str) -> bool:
    """Whether stderr says each text (whatever the console's line wrapping)."""
    flat = "".join(result.stderr.split())
    return all("".join(str(t).split()) in flat for t in texts)


def files_of(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# --- a folder that holds a user's files -------------------------------------------------


@pytest.mark.parametrize(
    "user_file",
    ["notes.txt", "deep/down/there/budget.xlsx", "summary.csv", "plots/my_chart.png", "empty/"],
    ids=["top level", "three folders down", "an output's name", "in plots", "an empty folder"],
)
def test_a_folder_holding_a_users_file_is_refused_and_left_byte_for_byte(
    small, tmp_path, user_file
):
    out = tmp_path / "results"
    target = out / user_file
    if user_file.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True)
        target.write_bytes(b"the user's own \x00\xff bytes")
    before, around = snapshot(out), sorted(p.name for p in tmp_path.iterdir())
    result = invoke("run", small, "-o", out, "-n", 3, "-q")
    assert result.exit_code == 2, result.output
    assert said(result, out.resolve(), "--force", user_file.rstrip("/"), "nothing was written")
    assert "Traceback" not in result.output
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around  # no temporary folder


def test_a_file_the_user_edited_in_an_earlier_output_is_theirs(small, tmp_path):
    out = tmp_path / "results"
    assert invoke("run", small, "-o", out, "-n", 3, "-q", "--no-plots").exit_code == 0
    with (out / "summary.csv").open("a") as handle:
        handle.write("my,own,row\n")
    before = snapshot(out)
    refused = invoke("run", small, "-o", out, "-n", 3, "-q", "--no-plots")
    assert refused.exit_code == 2 and said(refused, "summary.csv")
    forced = invoke("run", small, "-o", out, "-n", 3, "-q", "--no-plots", "--force")
    assert forced.exit_code == 2, forced.output
    assert said(forced, f"{out.resolve() / 'summary.csv'}: funnelsim needs this name")
    assert snapshot(out) == before


def test_a_file_where_the_folder_should_be_is_refused(small, tmp_path):
    out = tmp_path / "results"
    out.write_text("not a folder")
    result = invoke("run", small, "-o", out, "-n", 3, "-q")
    assert result.exit_code == 2 and said(result, "is a file, not a folder")
    assert out.read_text() == "not a folder"


def test_a_manifest_funnelsim_did_not_write_is_the_users(small, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / MANIFEST).write_text('{"mine": true}')
    for extra in ([], ["--force"]):
        result = invoke("run", small, "-o", out, "-n", 3, "-q", *extra)
        assert result.exit_code == 2 and said(result, MANIFEST)
    assert files_of(out) == [MANIFEST] and (out / MANIFEST).read_text() == '{"mine": true}'


# --- an earlier output is replaced --------------------------------------------------------


def test_an_earlier_output_is_replaced_whole(small, tmp_path):
    out = tmp_path / "results"
    assert invoke("run", small, "-o", out, "-n", 3, "-q", "--seed", 1).exit_code == 0
    assert "plots/funnel.png" in files_of(out)
    first = (out / "summary.csv").read_bytes()
    result = invoke("run", small, "-o", out, "-n", 3, "-q", "--seed", 2, "--no-plots")
    assert result.exit_code == 0, result.output
    assert (out / "summary.csv").read_bytes() != first
    assert not (out / "plots").exists()  # the earlier run's plots went with it
    manifest = Manifest.read(out)
    assert manifest is not None
    assert sorted(manifest.files) == [f for f in files_of(out) if f != MANIFEST]
    assert all(manifest.owns(out, f) for f in manifest.files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "results"]


def test_force_writes_beside_the_users_files_and_replaces_only_funnelsims(small, tmp_path):
    out = tmp_path / "results"
    assert invoke("run", small, "-o", out, "-n", 3, "-q", "--seed", 1).exit_code == 0
    (out / "notes.txt").write_text("keep me")
    (out / "plots" / "my_chart.png").write_bytes(b"\x89PNG mine")
    first = (out / "summary.csv").read_bytes()
    assert invoke("run", small, "-o", out, "-n", 3, "-q", "--seed", 2).exit_code == 2
    forced = invoke("run", small, "-o", out, "-n", 3, "-q", "--seed", 2, "--no-plots", "--force")
    assert forced.exit_code == 0, forced.output
    assert (out / "summary.csv").read_bytes() != first
    assert (out / "notes.txt").read_text() == "keep me"
    # the earlier run's plots are gone, the user's chart beside them is not
    assert files_of(out / "plots") == ["my_chart.png"]
    assert (out / "plots" / "my_chart.png").read_bytes() == b"\x89PNG mine"
    manifest = Manifest.read(out)
    assert manifest is not None and "notes.txt" not in manifest.files
    assert not [p for p in out.rglob("*") if "tmp" in p.name]


def test_a_journey_log_beside_an_earlier_output_is_kept(tmp_path):
    """A file another funnelsim command wrote is not the run's to delete."""
    out = tmp_path / "results"
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    assert invoke("run", scenario, "-o", out, "-n", 2, "-q").exit_code == 0
    log = out / "journeys.csv"
    assert invoke("simulate", scenario, "--journeys", log, "-q").exit_code == 0
    kept = log.read_bytes()
    again = invoke("run", scenario, "-o", out, "-n", 2, "-q", "--no-plots")
    assert again.exit_code == 0, again.output
    assert log.read_bytes() == kept
    manifest = Manifest.read(out)
    assert manifest is not None and manifest.files["journeys.csv"]["by"] == "simulate"
    assert not (out / "plots").exists()


# --- the current folder and the scenario's own folder ---------------------------------------


def test_dash_o_dot_in_the_scenario_folder(small, tmp_path, monkeypatch):
    project = small.parent
    monkeypatch.chdir(project)
    before, around = snapshot(project), sorted(p.name for p in tmp_path.iterdir())
    refused = invoke("run", "small.yaml", "-o", ".", "-n", 3, "-q")
    assert refused.exit_code == 2, refused.output
    assert said(refused, "small.yaml", "--force")
    assert snapshot(project) == before
    for seed in (1, 2):  # again: funnelsim's own files are replaced in place
        forced = invoke("run", "small.yaml", "-o", ".", "-n", 3, "-q", "--force", "--seed", seed)
        assert forced.exit_code == 0, forced.output
    assert (project / "small.yaml").read_bytes() == before["small.yaml"][0]
    assert {"summary.csv", "scenario.resolved.yaml", "plots/funnel.png"} <= set(files_of(project))
    assert sorted(p.name for p in tmp_path.iterdir()) == around
    assert not [p for p in project.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
    assert "seed: 2" in (project / "scenario.resolved.yaml").read_text()


def test_dash_o_dot_in_an_empty_folder_needs_no_force(small, tmp_path, monkeypatch):
    here = tmp_path / "empty"
    here.mkdir()
    monkeypatch.chdir(here)
    around = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("run", small, "-o", ".", "-n", 3, "-q", "--no-plots")
    assert result.exit_code == 0, result.output
    assert "summary.csv" in files_of(here)
    assert sorted(p.name for p in tmp_path.iterdir()) == around


def test_outputs_dir_dot_would_write_over_the_scenario_folder(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "plan.yaml").write_text(SMALL + "outputs: {dir: .}\n")
    (project / "other_plan.yaml").write_text(SMALL)
    before = snapshot(project)
    result = invoke("run", project / "plan.yaml", "-n", 3, "-q")
    assert result.exit_code == 2, result.output
    assert snapshot(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


# --- Ctrl-C --------------------------------------------------------------------------------


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("earlier", [False, True], ids=["new folder", "earlier output"])
@pytest.mark.parametrize("where", ["simulating", "writing"])
def test_an_interrupted_run_writes_nothing_and_says_so(
    small, tmp_path, monkeypatch, earlier, where
):
    out = tmp_path / "results"
    if earlier:
        assert invoke("run", small, "-o", out, "-n", 3, "-q").exit_code == 0
    before, around = snapshot(tmp_path), sorted(p.name for p in tmp_path.iterdir())
    if where == "writing":
        monkeypatch.setattr("funnelsim.report.plots.save_standard_plots", interrupt)
    else:
        monkeypatch.setattr("funnelsim.scenario.run", interrupt)
    result = invoke("run", small, "-o", out, "-n", 3)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "✗ interrupted: nothing was written"
    assert "Traceback" not in result.output and "wrote" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == around
    assert snapshot(tmp_path) == before


def test_an_interrupted_forced_run_leaves_no_temporary_folder(small, tmp_path, monkeypatch):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    monkeypatch.setattr("funnelsim.report.plots.save_standard_plots", interrupt)
    result = invoke("run", small, "-o", out, "-n", 3, "--force")
    assert result.exit_code == 130
    assert snapshot(tmp_path) == before


def test_ctrl_c_while_files_are_put_in_place_waits_for_them(small, tmp_path, monkeypatch):
    """A real SIGINT during the final renames: they finish, and the line says so."""
    import os
    import signal

    real_replace = os.replace

    out = tmp_path / "results"

    def replace_after_ctrl_c(src, dst):
        if Path(dst) == out:  # the new folder is renamed into place
            signal.raise_signal(signal.SIGINT)
        real_replace(src, dst)

    monkeypatch.setattr("funnelsim.io.os.replace", replace_after_ctrl_c)
    result = invoke("run", small, "-o", out, "-n", 3, "--no-plots")
    assert result.exit_code == 130
    assert said(result, f"interrupted: the outputs were written to {out}/")
    assert "summary.csv" in files_of(out) and (out / MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "results"]


def test_a_user_file_that_appears_while_writing_stops_the_swap(tmp_path):
    out = tmp_path / "results"
    with atomic_folder(out) as tmp:
        (tmp / "summary.csv").write_text("first")
    with pytest.raises(OutputRefused), atomic_folder(out) as tmp:
        (tmp / "summary.csv").write_text("second")
        (out / "notes.txt").write_text("written by the user meanwhile")
    assert files_of(out) == [MANIFEST, "notes.txt", "summary.csv"]
    assert (out / "summary.csv").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_the_library_writer_cleans_up_on_any_error(tmp_path):
    out = tmp_path / "a" / "b" / "results"
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "half.csv").write_text("x")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []  # not even the parents it made


# --- single files: the journey log and the JSON Schema ------------------------------------


def test_a_single_file_funnelsim_did_not_write_is_never_replaced(tmp_path):
    mine = tmp_path / "schema.json"
    mine.write_text("my schema")
    for extra in ([], ["--force"]):  # there is no --force for single files
        result = invoke("schema", "-o", mine, *extra)
        assert result.exit_code == 2
    assert mine.read_text() == "my schema" and files_of(tmp_path) == ["schema.json"]


def test_a_single_file_funnelsim_wrote_is_replaced_until_edited(tmp_path):
    path = tmp_path / "out" / "schema.json"
    assert invoke("schema", "-o", path).exit_code == 0
    assert json.loads(path.read_text())["title"] == "funnelsim scenario"
    assert invoke("schema", "-o", path).exit_code == 0  # its own file: replaced
    assert files_of(tmp_path / "out") == [MANIFEST, "schema.json"]
    path.write_text(path.read_text() + " ")
    result = invoke("schema", "-o", path)
    assert result.exit_code == 2 and said(result, "did not write it")
    assert path.read_text().endswith("}\n ")


def test_the_journey_log_is_refused_before_simulating(tmp_path, monkeypatch):
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    log = tmp_path / "journeys.csv"
    log.write_text("customer_id,timestamp,stage\n1,2026-11-01,awareness\n")
    before = snapshot(tmp_path)
    monkeypatch.setattr("funnelsim.scenario.run", interrupt)  # would show if it simulated
    result = invoke("simulate", scenario, "--journeys", log, "-q")
    assert result.exit_code == 2 and said(result, "already exists")
    assert snapshot(tmp_path) == before


def test_write_file_refuses_a_file_that_appeared_meanwhile(tmp_path):
    path = tmp_path / "log.csv"

    def write(tmp: Path) -> None:
        tmp.write_text("funnelsim's")
        path.write_text("the user's, written while funnelsim was busy")

    with pytest.raises(OutputRefused):
        write_file(path, write, by="simulate")
    assert files_of(tmp_path) == ["log.csv"]
    assert path.read_text().startswith("the user's")


# --- scenario.resolved.yaml runs again, to the byte ----------------------------------------


def rerun_resolved(first: Path, second: Path) -> None:
    result = invoke("run", first / "scenario.resolved.yaml", "-o", second, "-q", "--no-plots")
    assert result.exit_code == 0, result.output
    for name in ("summary.csv", "timeseries.csv", "scenario.resolved.yaml"):
        assert (second / name).read_bytes() == (first / name).read_bytes(), name


def test_the_resolved_file_of_the_bike_shop_reproduces_its_summary(tmp_path):
    first = tmp_path / "first"
    result = invoke("run", SCENARIOS / "bike_shop.yaml", "-o", first, "-n", 20, "-q")
    assert result.exit_code == 0, result.output
    text = (first / "scenario.resolved.yaml").read_text()
    assert "funnelsim_version" not in text and "dir:" not in text
    resolved = load_scenario(first / "scenario.resolved.yaml")
    assert (resolved.seed, resolved.replicates, resolved.engine) == (42, 20, "counts")
    assert resolved.horizon.dt_days == 0.2
    rerun_resolved(first, tmp_path / "second")


def test_the_resolved_file_carries_its_spend_csvs_and_runs_from_anywhere(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "plan.yaml").write_text(WITH_SPEND)
    spend_csv(project / "spend.csv", 80)
    spend_csv(project / "data" / "spend.csv", 160)
    first = tmp_path / "first"
    result = invoke("run", project / "plan.yaml", "-o", first, "-n", 20, "-q", "--no-plots")
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(first / "summary.csv").set_index(["scenario", "metric"])
    assert summary.loc[("more_radio", "spend"), "mean"] > summary.loc[("baseline", "spend"), "mean"]
    # the folder is self-contained: move it, and take the original spend files away
    moved = tmp_path / "elsewhere" / "first"
    moved.parent.mkdir()
    shutil.move(first, moved)
    shutil.rmtree(project)
    resolved = load_scenario(moved / "scenario.resolved.yaml")
    assert resolved.baseline.campaigns["radio"].spend.csv == "inputs/spend.csv"
    assert resolved.variants["more_radio"].campaigns["radio"]["spend"]["csv"] == (
        "inputs/spend-2.csv"
    )
    assert (moved / "inputs" / "spend-2.csv").read_text().splitlines()[1] == "2026-11-03,160"
    rerun_resolved(moved, tmp_path / "second")
    assert files_of(moved / "inputs") == files_of(tmp_path / "second" / "inputs")


def test_running_the_resolved_file_into_its_own_folder_replaces_it(tmp_path):
    out = tmp_path / "out"
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    result = run(load_scenario(scenario), replicates=3)
    from funnelsim.scenario import resolved_scenario

    write_outputs(result, out, resolved_scenario(load_scenario(scenario), result), plots=False)
    before = (out / "summary.csv").read_bytes()
    again = invoke("run", out / "scenario.resolved.yaml", "-o", out, "-q", "--no-plots")
    assert again.exit_code == 0, again.output
    assert (out / "summary.csv").read_bytes() == before
