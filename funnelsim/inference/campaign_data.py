"""Campaigns of a fit: a YAML file in the scenario ``campaigns:`` syntax plus daily spend.

The file declares what each campaign may move (edges ``a -> b`` or arrivals of a
channel); its ``lift`` values are only prior centres for the fit. Spend comes from the
campaign's own ``spend`` key (``total``, ``per_day`` or ``csv``, paths relative to the
campaigns file) or, when it has none, from the column named after the campaign in the
spend CSV given beside the data (``--spend``); a campaign with neither is simply "on"
inside its window. Campaigns are resolved onto the data's days (day 0 = the first day
of the data), as :class:`funnelsim.campaigns.Campaign` objects.

>>> import datetime as dt, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "c.yaml").write_text(
...     "campaigns:\\n  promo:\\n    start: 2026-01-03\\n    end: 2026-01-04\\n"
...     "    effects: [{edge: a -> b, lift: 2}]\\n")
>>> [c] = read_campaigns(d / "c.yaml", start=dt.date(2026, 1, 1), n_days=6)
>>> c.name, c.edge_lifts, c.pressure().tolist()
('promo', {('a', 'b'): 2.0}, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from funnelsim.campaigns import Campaign, spread_spend
from funnelsim.data.spend import read_spend_column
from funnelsim.errors import Problem, ScenarioError
from funnelsim.inference.stats import JourneyStats
from funnelsim.scenario.plans import campaign_of
from funnelsim.scenario.schema import CampaignSpec
from funnelsim.scenario.yamlio import read_yaml

__all__ = ["read_campaigns", "campaigns_for_stats"]

_SPECS = TypeAdapter(dict[str, CampaignSpec])


def campaigns_for_stats(
    stats: JourneyStats, path: str | Path, spend_csv: str | Path | None = None
) -> list[Campaign]:
    """:func:`read_campaigns` on the days of ``stats`` (from its first day to its end)."""
    start = stats.start.normalize()
    n_days = max(int(np.ceil((stats.end - start) / pd.Timedelta(days=1))), 1)
    return read_campaigns(path, start=start.date(), n_days=n_days, spend_csv=spend_csv)


def read_campaigns(
    path: str | Path,
    *,
    start: dt.date,
    n_days: int,
    spend_csv: str | Path | None = None,
) -> list[Campaign]:
    """Campaigns of a YAML file (top-level ``campaigns:`` mapping, or the mapping alone)
    on ``n_days`` days from ``start``. Bad input raises :class:`ScenarioError` with
    file and line."""
    path = Path(path)
    label = str(path)
    raw, lines = read_yaml(path, label=label)
    prefix: tuple[str | int, ...] = ()
    if isinstance(raw, dict) and "campaigns" in raw:
        raw, prefix = raw["campaigns"], ("campaigns",)
    if not isinstance(raw, dict) or not raw:
        raise ScenarioError(
            [
                Problem(
                    prefix,
                    "no campaigns: expected a mapping of campaign names",
                    "e.g. campaigns: {promo: {effects: [{edge: a -> b, lift: 1.5}]}}",
                    file=label,
                )
            ],
            label,
        )
    try:
        specs = _SPECS.validate_python(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = prefix + tuple(p for p in err["loc"] if isinstance(p, str | int))
            message, _, hint = err["msg"].removeprefix("Value error, ").partition("\nhint: ")
            problems.append(_located(Problem(loc, message, hint), lines, label))
        raise ScenarioError(problems, label) from None
    end = start + dt.timedelta(days=n_days - 1)
    out = []
    for name, spec in specs.items():
        where = prefix + (name,)
        first = ((spec.start or start) - start).days
        last = ((spec.end or end) - start).days
        spend = None
        if spec.spend is not None and spec.spend.csv is None:
            spend = spread_spend(
                n_days, first, last, total=spec.spend.total, per_day=spec.spend.per_day
            )
        elif spec.spend is not None or spend_csv is not None:
            csv = Path(spec.spend.csv) if spec.spend and spec.spend.csv else Path(str(spend_csv))
            if spec.spend is not None and not csv.is_absolute():
                csv = path.parent / csv
            column = spec.spend.column if spec.spend and spec.spend.column else name
            if spec.spend is None and column not in _header(csv):
                spend = None  # the spend file has no column for this campaign: "on" in its window
            else:
                lo, hi = max(first, 0), min(last, n_days - 1)
                window, problems = read_spend_column(
                    csv, column, start + dt.timedelta(days=lo), start + dt.timedelta(days=hi),
                    where + ("spend",),
                )  # fmt: skip
                if problems or window is None:
                    raise ScenarioError([_located(p, lines, label) for p in problems], str(csv))
                spend = np.zeros(n_days)
                spend[lo : hi + 1] = window
        if spend is not None and spec.half_saturation is None:
            raise ScenarioError(
                [
                    _located(
                        Problem(
                            where,
                            f"campaign {name!r} has spend but no `half_saturation`",
                            "give the adstocked spend per day that gives half the full lift",
                        ),
                        lines,
                        label,
                    )
                ],
                label,
            )
        out.append(campaign_of(name, spec, first, last, n_days, spend))
    return out


def _header(csv: Path) -> list[str]:
    try:
        with csv.open(encoding="utf-8-sig") as handle:
            return [h.strip() for h in handle.readline().strip().split(",")]
    except OSError:
        return []


def _located(problem: Problem, lines: dict, label: str) -> Problem:
    path = problem.path
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            file, line = lines[path[:n]]
            return Problem(path, problem.message, problem.hint, file=file, line=line)
    return Problem(path, problem.message, problem.hint, file=label)
