"""Errors that users can act on: each problem has a location in their file and a hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EngineMismatch",
    "Problem",
    "FunnelsimError",
    "ScenarioError",
    "did_you_mean",
    "format_path",
]


def format_path(path: Sequence[str | int]) -> str:
    """``("funnel", "stages", "interest")`` → ``funnel.stages.interest``; list items as ``[i]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest choice, or listing the choices when none is close.

    >>> did_you_mean("desier", ["awareness", "desire"])
    "did you mean 'desire'?"
    """
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not choices:
        return ""
    return "expected one of: " + ", ".join(choices)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    path: tuple[str | int, ...]
    message: str
    hint: str = ""
    file: str | None = None
    line: int | None = None

    def location(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where += f":{self.line}"
        return where

    def __str__(self) -> str:
        loc = self.location()
        text = f"{loc + ': ' if loc else ''}{format_path(self.path)}: {self.message}"
        return text + (f" ({self.hint})" if self.hint else "")


class FunnelsimError(Exception):
    """Base class for errors funnelsim reports to users without a traceback."""


class EngineMismatch(FunnelsimError, ValueError):
    """The scenario needs something the chosen engine cannot do (queues, non-Erlang dwell)."""


class SamplingFailed(FunnelsimError):
    """The sampler could not start or run on a model (say what failed, and what to do)."""


class ScenarioError(FunnelsimError):
    """An input file has one or more problems; all of them are in :attr:`problems`."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}{n} problem{'s' if n != 1 else ''}\n{lines}")
