"""Datasets: loaders for RAVDESS, FER2013 and your own data, protocols, summaries and downloads.

Every loader returns a :class:`Dataset` whose labels are canonical emotion names
(:mod:`emofuse.labels`). :func:`load_dataset` picks a loader by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emofuse.data._base import Dataset, Modality, Sample
from emofuse.data.custom import load_folder, load_manifest
from emofuse.data.fer2013 import load_fer2013
from emofuse.data.protocols import PROTOCOLS, Fold, Protocol, ProtocolError, get_protocol
from emofuse.data.ravdess import load_ravdess, parse_ravdess_name
from emofuse.data.text import load_carer, load_meld
from emofuse.errors import EmofuseError


def _load_custom(path: str | Path, **kwargs: object) -> Dataset:
    path = Path(path)
    return load_manifest(path, **kwargs) if path.is_file() else load_folder(path, **kwargs)  # type: ignore[arg-type]


DATASETS: dict[str, Callable[..., Dataset]] = {
    "ravdess": load_ravdess,
    "fer2013": load_fer2013,
    "meld": load_meld,
    "carer": load_carer,
    "folder": load_folder,
    "manifest": load_manifest,
    "custom": _load_custom,
}
"""Dataset name -> loader. ``custom`` is a manifest file or a ``<label>/<files>`` folder."""


def load_dataset(name: str, path: str | Path, *, skip_bad: bool = False, progress: bool = False) -> Dataset:
    """Load dataset ``name`` from ``path``; see :data:`DATASETS` for the names."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise EmofuseError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
    return loader(path, skip_bad=skip_bad, progress=progress)


__all__ = [
    "DATASETS",
    "PROTOCOLS",
    "Dataset",
    "Fold",
    "Modality",
    "Protocol",
    "ProtocolError",
    "Sample",
    "get_protocol",
    "load_carer",
    "load_dataset",
    "load_fer2013",
    "load_folder",
    "load_manifest",
    "load_meld",
    "load_ravdess",
    "parse_ravdess_name",
]
