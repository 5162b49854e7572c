"""One way to run NUTS on a PyMC model: nutpie by default, PyMC's own sampler as fallback.

:func:`sample` hides what every fit needs around the sampler:

* ``sampler="nutpie"`` (default: compiled with numba, fastest per effective draw once
  compiled) or ``"pymc"`` (PyMC's NUTS, C backend: quicker to compile, slower to run);
* a nutpie failure (a compile error, or the rare ``Assertion 'PyArray_NDIM(V3) == 1'``
  seen inside a PyTensor Reshape op) is caught and the model is sampled once more with
  PyMC; the result says so in ``attrs["sampler"]`` (``"pymc"``) and in
  ``attrs["notes"]`` (a JSON list of plain-English strings);
* PyTensor's "no BLAS" warning and ArviZ's migration notice are silenced (harmless here);
* the compile cache is PyTensor's compile directory (``pytensor.config.compiledir``,
  kept between runs): a warm nutpie compile takes seconds instead of a minute or more;
* ``progress=True`` prints what is being compiled and shows the sampler's progress bar.

The same integer ``seed`` gives identical draws; ``None`` draws a fresh seed.

>>> import pymc as pm
>>> with pm.Model() as m:
...     x = pm.Normal("x")
>>> idata = sample(m, sampler="pymc", draws=50, tune=50, chains=2, seed=1)  # doctest: +SKIP
>>> idata.posterior["x"].shape, idata.attrs["sampler"]  # doctest: +SKIP
((2, 50), 'pymc')
"""

from __future__ import annotations

import json
import time
import warnings
from typing import Any, Literal

import arviz as az
import numpy as np
import pymc as pm

__all__ = ["SAMPLERS", "sample", "silence_warnings", "compile_nutpie"]

SAMPLERS = ("nutpie", "pymc")
Sampler = Literal["nutpie", "pymc"]


def silence_warnings() -> None:
    """Hide the harmless warnings PyTensor and ArviZ print on import and on compile."""
    warnings.filterwarnings("ignore", message=".*BLAS.*")
    warnings.filterwarnings("ignore", message=".*[Uu]pcoming changes may be backward.*")
    warnings.filterwarnings("ignore", message=".*migration_guide.*")


silence_warnings()


def sample(
    model: pm.Model,
    *,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    progress: bool = False,
    low_rank: bool = False,
    compiled: Any = None,
    target_accept: float = 0.8,
) -> az.InferenceData:
    """Draw from the posterior of ``model`` with NUTS.

    ``low_rank`` adapts nutpie's mass matrix with low-rank corrections (for posteriors
    with strong correlations, such as count fits). ``compiled`` is a nutpie model
    compiled earlier from a model of the same structure (with its data already set by
    ``with_data``): it is sampled without compiling again.

    Returns an InferenceData with ``posterior`` and ``sample_stats`` (``diverging``
    included) and ``attrs``: ``sampler`` (the one that actually ran), ``draws``,
    ``tune``, ``chains``, ``seed`` (the integer used), ``compile_seconds`` (nutpie's
    compile; PyMC compiles inside its sampling), ``sampling_seconds`` and
    ``notes`` (JSON list; mentions a fallback from nutpie to PyMC).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))
    notes: list[str] = []
    used = sampler
    t0 = time.perf_counter()
    compile_s = 0.0  # nutpie's compile; PyMC compiles inside its sampling
    if sampler == "nutpie":
        try:
            idata, compile_s = _nutpie(
                model, draws, tune, chains, seed, progress, low_rank=low_rank, compiled=compiled,
                target_accept=target_accept,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - any nutpie failure: retry with PyMC
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            notes.append(f"nutpie failed ({reason.strip()}); sampled again with PyMC's NUTS")
            used = "pymc"
            idata = _pymc(model, draws, tune, chains, seed, progress, target_accept)
    else:
        idata = _pymc(model, draws, tune, chains, seed, progress, target_accept)
    idata.attrs.update(
        sampler=used,
        draws=int(draws),
        tune=int(tune),
        chains=int(chains),
        seed=int(seed),
        sampling_seconds=round(time.perf_counter() - t0 - compile_s, 3),
        compile_seconds=round(compile_s, 3),
        notes=json.dumps(notes),
    )
    return idata


def _say(progress: bool, message: str) -> None:
    if progress:
        from rich.console import Console

        Console(stderr=True).print(f"[dim]{message}[/dim]")


def compile_nutpie(model: pm.Model, progress: bool = False) -> Any:
    """The model compiled for nutpie with numba (the compile is cached on disk)."""
    import nutpie

    _say(progress, "compiling the model with numba (nutpie; cached after the first run)…")
    with warnings.catch_warnings():
        silence_warnings()
        return nutpie.compile_pymc_model(model, backend="numba")


def _nutpie(
    model: pm.Model,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progress: bool,
    *,
    low_rank: bool = False,
    compiled: Any = None,
    target_accept: float = 0.8,
) -> tuple[az.InferenceData, float]:
    """Draws from nutpie, and the seconds its compile took."""
    import nutpie

    with warnings.catch_warnings():
        silence_warnings()
        t0 = time.perf_counter()
        if compiled is None:
            compiled = compile_nutpie(model, progress)
        compile_s = time.perf_counter() - t0
        _say(progress, "sampling (nutpie)…")
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progress,
            save_warmup=False,
            low_rank_modified_mass_matrix=low_rank,
            target_accept=target_accept,
        )
    return idata, compile_s  # type: ignore[return-value]


def _pymc(
    model: pm.Model,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    progress: bool,
    target_accept: float = 0.8,
) -> az.InferenceData:
    """PyMC's NUTS; a sampler that cannot start is reported as
    :class:`~funnelsim.errors.SamplingFailed` (its message, not a traceback)."""
    import logging

    from pymc.exceptions import SamplingError

    from funnelsim.errors import SamplingFailed

    _say(progress, "compiling and sampling (PyMC NUTS)…")
    logger = logging.getLogger("pymc")
    level = logger.level
    if not progress:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            silence_warnings()
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=min(chains, 2),
                random_seed=seed,
                progressbar=progress,
                model=model,
                compute_convergence_checks=False,
                target_accept=target_accept,
            )
    except SamplingError as exc:
        bad = [line.strip() for line in str(exc).splitlines() if "nan" in line or "inf" in line]
        raise SamplingFailed(
            "the sampler could not start: the model's log-density is not finite at its "
            f"starting point ({'; '.join(bad) or str(exc).splitlines()[0]}). The data hold "
            "something the model cannot use — please report it with `funnelsim --version` "
            "and a summary of the data"
        ) from None
    finally:
        logger.setLevel(level)
    return idata
