"""A fitted journey: posterior draws of its rates and campaign effects, in a file you can trust.

:class:`FittedFunnel` wraps an ArviZ ``InferenceData`` whose posterior holds ``rate``
(per day, dims ``segment, edge``), optionally ``lift`` (dim ``effect``) and ``arrivals``
(dims ``segment, channel``), and whose attrs record the funnel (stages, goal, entry,
edges), a summary of the data, the sampler settings and the funnelsim version. It is
saved as NetCDF with a content hash; :meth:`FittedFunnel.load` refuses a file whose
content no longer matches its hash, or that funnelsim did not write.

>>> import numpy as np, arviz as az
>>> idata = az.from_dict(
...     posterior={"rate": np.full((2, 50, 1, 2), 0.1)},
...     dims={"rate": ["segment", "edge"]},
...     coords={"segment": ["all"], "edge": ["a -> b", "a -> lost"]},
... )
>>> fit = FittedFunnel(idata, stages=("a", "b"), goal="b", kind="journeys")
>>> fit.rates()[["source", "target", "rate_mean"]].round(3).values.tolist()
[['a', 'b', 0.1], ['a', 'lost', 0.1]]
>>> round(fit.funnel.dwell_days()["a"], 3)
5.0
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from funnelsim import __version__
from funnelsim.errors import FunnelsimError
from funnelsim.funnel import LOST, Funnel

__all__ = ["FittedFunnel", "Diagnostics", "FitFileError", "HDI_PROB", "split_edge", "target_label"]

#: credible mass of the intervals funnelsim prints (ArviZ's default)
HDI_PROB = 0.94
_HASH = "funnelsim_hash"
#: posterior variables whose convergence :meth:`FittedFunnel.diagnostics` checks
_CHECKED = (
    "rate", "lift", "arrivals", "carryover", "half_saturation", "level", "trend", "noise",
    "repeat_r", "repeat_alpha", "dropout_s", "dropout_beta", "repeat_lambda", "dropout_mu",
    "stage_exit_rate", "class_weight", "class_repeat_rate", "class_dropout_rate",
)  # fmt: skip
_GROUPS = ("posterior", "sample_stats", "observed_data", "posterior_predictive", "constant_data")


class FitFileError(FunnelsimError):
    """A fit file that cannot be used: missing, foreign, or changed after it was written."""


def target_label(target: str) -> str:
    """How a planner reads an effect's target: ``a → b``, ``arrivals`` or ``arrivals: web``.

    >>> target_label("desire -> conversion"), target_label("arrivals:*")
    ('desire → conversion', 'arrivals')
    """
    if target == "arrivals:*":
        return "arrivals"
    return target.replace(" -> ", " → ").replace("arrivals:", "arrivals: ")


def split_edge(edge: str) -> tuple[str, str]:
    """``"a -> b"`` → ``("a", "b")``.

    >>> split_edge("desire -> conversion")
    ('desire', 'conversion')
    """
    source, _, target = edge.partition(" -> ")
    return source.strip(), target.strip()


@dataclass(frozen=True)
class Diagnostics:
    """Convergence of a fit: worst R-hat, smallest bulk and tail ESS, divergences."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    draws: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class FittedFunnel:
    """Posterior of a journey's rates (and campaign effects) with its funnel and provenance.

    Parameters
    ----------
    idata
        InferenceData following the fit contract (``rate`` per segment and edge, …).
    stages
        Journey order of the stages (``lost`` is added last).
    goal, entry
        The funnel's goal stage and where new customers enter (default: first stage).
    kind
        ``"journeys"`` or ``"snapshots"``: what the fit was learned from.
    data
        A JSON-able summary of the data (customers, dates, …).
    """

    def __init__(
        self,
        idata: Any,
        *,
        stages: Sequence[str],
        goal: str,
        kind: str,
        entry: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.idata = idata
        self.stages = tuple(s for s in stages if s != LOST) + (LOST,)
        self.goal = goal
        self.entry = entry or self.stages[0]
        self.kind = kind
        self.data = dict(data or {})
        post = idata.posterior
        self.edges = [split_edge(str(e)) for e in post["edge"].values]
        self.segments = tuple(str(s) for s in post["segment"].values)
        for source, target in self.edges:
            for stage in (source, target):
                if stage not in self.stages:
                    raise ValueError(f"edge {source} -> {target}: {stage!r} is not a stage")
        if goal not in self.stages:
            raise ValueError(f"goal {goal!r} is not a stage")

    # ------------------------------------------------------------------ draws
    @property
    def n_draws(self) -> int:
        post = self.idata.posterior
        return int(post.sizes["chain"] * post.sizes["draw"])

    def _flat(self, name: str) -> np.ndarray:
        values = self.idata.posterior[name].values
        return values.reshape((-1,) + values.shape[2:])

    def rate_draws(self, n: int | None = None) -> np.ndarray:
        """Rate matrices per draw ``(n, G, S, S)`` in :attr:`stages` order; draw r is the
        posterior's r-th (chains one after another), cycling when ``n`` exceeds them."""
        flat = self._flat("rate")  # (D, G, E)
        pick = np.arange(n if n is not None else len(flat)) % len(flat)
        out = np.zeros((len(pick), len(self.segments), len(self.stages), len(self.stages)))
        idx = {s: i for i, s in enumerate(self.stages)}
        for e, (source, target) in enumerate(self.edges):
            out[:, :, idx[source], idx[target]] = flat[pick, :, e]
        return out

    def lift_draws(self, n: int | None = None) -> dict[tuple[str, str], np.ndarray]:
        """Campaign lift per draw, keyed by ``(campaign, target)``; empty without campaigns."""
        if "lift" not in self.idata.posterior:
            return {}
        flat = self._flat("lift")
        pick = np.arange(n if n is not None else len(flat)) % len(flat)
        post = self.idata.posterior
        return {
            (str(c), str(t)): flat[pick, k]
            for k, (c, t) in enumerate(zip(post["campaign"].values, post["target"].values))
        }

    @property
    def funnel(self) -> Funnel:
        """The journey with posterior-mean rates (of the first segment when there are several)."""
        mean = self.rate_draws().mean(axis=0)[0]
        return Funnel(self.stages, mean, goal=self.goal, entry=self.entry)

    def funnel_spec(self, segment: int = 0) -> dict:
        """A scenario ``funnel:`` mapping with posterior-mean rates (rounded to 6 digits)."""
        mean = self.rate_draws().mean(axis=0)[segment]
        stages: dict[str, dict] = {}
        for i, s in enumerate(self.stages[:-1]):
            row = {self.stages[j]: float(f"{r:.6g}") for j, r in enumerate(mean[i]) if r > 0}
            stages[s] = {"rates": row}
        return {"goal": self.goal, "entry": self.entry, "stages": stages}

    # ------------------------------------------------------------------ tables
    def rates(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """``segment, source, target, rate_mean, rate_hdi_low, rate_hdi_high`` (per day)."""
        import arviz as az

        rate = self.idata.posterior["rate"]
        hdi = az.hdi(rate, hdi_prob=hdi_prob)["rate"]
        mean = rate.mean(("chain", "draw"))
        rows = []
        for g, seg in enumerate(self.segments):
            for e, (source, target) in enumerate(self.edges):
                rows.append(
                    {
                        "segment": seg,
                        "source": source,
                        "target": target,
                        "rate_mean": float(mean.values[g, e]),
                        "rate_hdi_low": float(hdi.values[g, e, 0]),
                        "rate_hdi_high": float(hdi.values[g, e, 1]),
                    }
                )
        return pd.DataFrame(rows)

    def effects(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """``campaign, target, lift_mean, lift_hdi_low, lift_hdi_high`` (empty: no
        campaigns); count fits add the fitted ``carryover``, ``half_life_days`` and
        ``half_saturation`` of each campaign (``_mean``, ``_hdi_low``, ``_hdi_high``)."""
        import arviz as az

        cols = ["campaign", "target", "lift_mean", "lift_hdi_low", "lift_hdi_high"]
        if "lift" not in self.idata.posterior:
            return pd.DataFrame(columns=cols)
        post = self.idata.posterior
        lift = post["lift"]
        hdi = az.hdi(lift, hdi_prob=hdi_prob)["lift"].values
        mean = lift.mean(("chain", "draw")).values
        table = pd.DataFrame(
            {
                "campaign": [str(c) for c in lift["campaign"].values],
                "target": [str(t) for t in lift["target"].values],
                "lift_mean": mean,
                "lift_hdi_low": hdi[:, 0],
                "lift_hdi_high": hdi[:, 1],
            }
        )[cols]
        for name in ("carryover", "half_life_days", "half_saturation"):
            if name not in post:
                continue
            values = post[name]  # per campaign (count fits learn them)
            hdi_c = az.hdi(values, hdi_prob=hdi_prob)[name]
            by = {str(c): k for k, c in enumerate(values["campaigns"].values)}
            k = [by[c] for c in table["campaign"]]
            table[f"{name}_mean"] = values.mean(("chain", "draw")).values[k]
            table[f"{name}_hdi_low"] = hdi_c.values[k, 0]
            table[f"{name}_hdi_high"] = hdi_c.values[k, 1]
        return table

    def dwell_routing(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Per segment and stage: dwell (days) and where people go next, each with its
        HDI — the planner's ``dwell_days`` / ``next`` form. The ``mean`` column holds the
        posterior median of the dwell (the mean of 1/rate need not exist when the data
        say little) and the posterior mean of each routing share."""
        import arviz as az

        draws = self.rate_draws()  # (D, G, S, S)
        total = draws.sum(axis=-1)  # (D, G, S)
        rows = []

        def interval(x: np.ndarray) -> tuple[float, float]:
            lo, hi = az.hdi(np.asarray(x), hdi_prob=hdi_prob)
            return float(lo), float(hi)

        for g, seg in enumerate(self.segments):
            for i, stage in enumerate(self.stages[:-1]):
                if not (total[:, g, i] > 0).all():
                    continue
                dwell = 1.0 / total[:, g, i]
                lo, hi = interval(dwell)
                row: dict[str, Any] = {
                    "segment": seg,
                    "stage": stage,
                    "to": "(dwell days)",
                    "mean": float(np.median(dwell)),  # a mean of 1/rate may not exist
                    "hdi_low": lo,
                    "hdi_high": hi,
                }
                rows.append(row)
                for j, target in enumerate(self.stages):
                    if (draws[:, g, i, j] > 0).any():
                        share = draws[:, g, i, j] / total[:, g, i]
                        lo, hi = interval(share)
                        rows.append(
                            {
                                "segment": seg,
                                "stage": stage,
                                "to": target,
                                "mean": float(share.mean()),
                                "hdi_low": lo,
                                "hdi_high": hi,
                            }
                        )
        return pd.DataFrame(rows)

    @property
    def notes(self) -> list[str]:
        """Plain-English remarks of the model about what the data can and cannot tell."""
        raw = self.idata.attrs.get("notes", "[]")
        return list(json.loads(raw)) if isinstance(raw, str) else list(raw)

    def diagnostics(self) -> Diagnostics:
        """R-hat ≤ 1.01, bulk and tail ESS ≥ 400 and no divergences, over every parameter
        funnelsim reports (rates, lifts, arrivals)."""
        import arviz as az

        post = self.idata.posterior
        # a value held fixed (a count fit's measurement noise) has nothing to check
        names = [v for v in _CHECKED if v in post and float(post[v].std()) > 0]
        post = post[names]
        chains = int(post.sizes["chain"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rhat = max(float(az.rhat(post)[v].max()) for v in names) if chains > 1 else float("nan")
            bulk = min(float(az.ess(post, method="bulk")[v].min()) for v in names)
            tail = min(float(az.ess(post, method="tail")[v].min()) for v in names)
        div = 0
        stats = getattr(self.idata, "sample_stats", None)
        if stats is not None and "diverging" in stats:
            div = int(stats["diverging"].values.sum())
        div += int(self.repeat_info.get("divergences", 0))
        problems = []
        if chains < 2:
            problems.append("one chain only: R-hat cannot be checked (use --chains 4)")
        elif not rhat <= 1.01:
            problems.append(f"R-hat {rhat:.3f} > 1.01: chains disagree")
        if not bulk >= 400:
            problems.append(f"bulk ESS {bulk:.0f} < 400")
        if not tail >= 400:
            problems.append(f"tail ESS {tail:.0f} < 400")
        if div:
            problems.append(f"{div} divergent transitions")
        return Diagnostics(rhat, bulk, tail, div, self.n_draws, problems)

    # ------------------------------------------------------------------ customers
    @property
    def repeat_info(self) -> dict[str, Any]:
        """What the customer-by-customer fit of a repeat stage recorded (``stage``,
        ``heterogeneity``, ``loo``, …); empty when there is none."""
        raw = self.idata.attrs.get("repeat")
        return dict(json.loads(raw)) if isinstance(raw, str) else {}

    def repeat_model(self, kind: str | None = None, max_draws: int | None = None) -> Any:
        """The repeat stage's :class:`~funnelsim.inference.repeat.RepeatModel`
        (``kind``: ``"gamma"``, ``"classes:K"`` or ``"none"``; default: the heterogeneity
        fitted), or
        None without a customer-by-customer fit."""
        from funnelsim.inference.repeat import RepeatModel

        info = self.repeat_info
        if not info:
            return None
        return RepeatModel(self.idata.posterior, kind or info["heterogeneity"], max_draws)

    def repeat_histories(self) -> Any:
        """The repeat stage's per-customer histories, or None."""
        from funnelsim.inference.repeat import RepeatHistories

        info = self.repeat_info
        if not info:
            return None
        return RepeatHistories.from_dataset(self.idata.constant_data, info["stage"])

    def last_events(self) -> pd.DataFrame | None:
        """Each customer's last event (``customer_id, segment, stage, last_event``), or
        None for fits that do not keep them (counts, snapshots, older files)."""
        cd = getattr(self.idata, "constant_data", None)
        if cd is None or "last_stage" not in cd:
            return None
        return pd.DataFrame(
            {
                "customer_id": cd["customer"].values,
                "segment": cd["last_segment"].values.astype(str),
                "stage": cd["last_stage"].values.astype(str),
                "last_event": pd.to_datetime(cd["last_event"].values),
            }
        )

    # ------------------------------------------------------------------ files
    def _attrs(self) -> dict[str, str]:
        funnel = {
            "stages": list(self.stages),
            "goal": self.goal,
            "entry": self.entry,
            "edges": [f"{a} -> {b}" for a, b in self.edges],
        }
        return {
            "funnelsim_kind": self.kind,
            "funnelsim_funnel": json.dumps(funnel),
            "funnelsim_data": json.dumps(self.data, default=str),
            "funnelsim_version": __version__,
        }

    def stamp(self) -> None:
        """Put the funnel, data summary and version in the attrs, then the content hash
        over everything (what :meth:`load` checks)."""
        self.idata.attrs.update(self._attrs())
        self.idata.attrs[_HASH] = content_hash(self.idata)

    def save(self, path: str | Path) -> Path:
        """Write the fit as NetCDF with a content hash, atomically (nothing on failure;
        a file funnelsim did not write is never replaced)."""
        from funnelsim.io import write_file

        self.stamp()
        return write_file(path, lambda tmp: self.idata.to_netcdf(str(tmp)), by="fit")

    @classmethod
    def load(cls, path: str | Path) -> FittedFunnel:
        """Read a fit written by :meth:`save`; raises :class:`FitFileError` for a missing,
        foreign or changed file."""
        import arviz as az

        path = Path(path)
        if not path.is_file():
            raise FitFileError(f"{path}: fit file not found — make one with `funnelsim fit`")
        try:
            with warnings.catch_warnings(), az.rc_context({"data.load": "eager"}):
                warnings.simplefilter("ignore")
                idata = az.from_netcdf(str(path))  # eager: the file is closed after reading
        except Exception as exc:  # noqa: BLE001 - any reader failure means "not a fit file"
            raise FitFileError(
                f"{path}: not a NetCDF fit file ({type(exc).__name__}) — make one with "
                "`funnelsim fit`"
            ) from None
        attrs = dict(idata.attrs)
        if _HASH not in attrs or "funnelsim_funnel" not in attrs:
            raise FitFileError(
                f"{path}: not a funnelsim fit (no funnel or content hash in its attributes) — "
                "make one with `funnelsim fit`"
            )
        if content_hash(idata) != attrs[_HASH]:
            raise FitFileError(
                f"{path}: its content does not match the hash funnelsim recorded when it wrote "
                "the file, so it was changed since — refit with `funnelsim fit`"
            )
        funnel = json.loads(attrs["funnelsim_funnel"])
        return cls(
            idata,
            stages=funnel["stages"],
            goal=funnel["goal"],
            entry=funnel["entry"],
            kind=attrs.get("funnelsim_kind", "journeys"),
            data=json.loads(attrs.get("funnelsim_data", "{}")),
        )


def content_hash(idata: Any) -> str:
    """SHA-256 over every variable, coordinate and root attribute (but the hash itself)."""
    h = hashlib.sha256()
    for group in _GROUPS:
        if not hasattr(idata, group):
            continue
        ds = getattr(idata, group)
        h.update(group.encode())
        for name in sorted(map(str, ds.variables)):
            var = ds[name]
            values = var.values
            if values.dtype.kind == "M":  # NetCDF reads dates back in nanoseconds
                values = values.astype("datetime64[ns]")
            text = values.dtype.kind in "OUS"  # text may come back as object or unicode
            kind = "text" if text else values.dtype.str
            h.update(f"{name}|{var.dims}|{kind}|{var.shape}".encode())
            if text:
                h.update("\x1f".join(map(str, values.ravel())).encode())
            else:
                h.update(np.ascontiguousarray(values).tobytes())
    attrs = {k: str(v) for k, v in idata.attrs.items() if k != _HASH}
    h.update(json.dumps(attrs, sort_keys=True).encode())
    return h.hexdigest()
