"""Errors emofuse raises on bad input: each names the file and the problem."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class EmofuseError(Exception):
    """Base class for errors a user can act on; the CLI prints them without a traceback."""


@dataclass(frozen=True)
class BadFile:
    """One file (or row) that could not be used, and why."""

    path: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}


class ConfigError(EmofuseError):
    """A configuration with an unknown key or an invalid value."""


def checked_options(cls: Any, options: Mapping[str, Any], *, what: str,
                    error: type[EmofuseError] = ConfigError) -> dict[str, Any]:
    """``options`` as keyword arguments for dataclass ``cls``; an unknown key is an error listing the known ones."""
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise error(f"unknown {what} option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return dict(options)


class DataError(EmofuseError):
    """A file or row of a dataset is unusable. ``path`` says which, ``problem`` says why."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments, so it crosses process boundaries (a study's worker jobs)
        # as itself; the default would call __init__ with the message alone and fail.
        return (type(self), (self.path, self.problem))

    def as_bad_file(self) -> BadFile:
        return BadFile(self.path, self.problem)


class BadFilesCollector:
    """Either raise on the first bad file (strict) or collect them all (``skip_bad=True``).

    Loaders call :meth:`add` for every problem they find; with ``skip_bad`` nothing is dropped
    silently: every skipped file is in :attr:`bad` and ends up in the dataset's report.
    """

    def __init__(self, *, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.bad: list[BadFile] = []

    def add(self, error: DataError) -> None:
        if not self.skip_bad:
            raise error
        self.bad.append(error.as_bad_file())
