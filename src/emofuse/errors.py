"""Errors emofuse raises on bad input: each names the file and the problem."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class EmofuseError(Exception):
    """Base class for errors a user can act on; the CLI prints them without a traceback."""


@dataclass(frozen=True)
class BadFile:
    """One file (or row) that could not be used, and why."""

    path: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}


class DataError(EmofuseError):
    """A file or row of a dataset is unusable. ``path`` says which, ``problem`` says why."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

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
