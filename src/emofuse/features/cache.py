"""An on-disk cache of computed features, so a second training run does not decode and transform again."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import atomic_write, file_digest

CACHE_DIR_ENV = "EMOFUSE_CACHE_DIR"


def cache_home() -> Path:
    """emofuse's cache folder: ``$EMOFUSE_CACHE_DIR`` if that is set, else ``~/.cache/emofuse``."""
    base = os.environ.get(CACHE_DIR_ENV)
    return Path(base) if base else Path.home() / ".cache" / "emofuse"


def default_cache_root() -> Path:
    """``<cache home>/features``: where feature arrays go."""
    return cache_home() / "features"


class FeatureCache:
    """On-disk cache of feature arrays keyed by file content hash and feature settings.

    The key hashes the file's bytes, not its name or modification time: a renamed or copied clip
    is still a hit, an edited one a miss. Entries are ``<root>/<2-char fan-out>/<key>.npy``,
    written atomically, so concurrent workers never read a half-written array. An unreadable
    entry (a truncated write from a crashed process, say) counts as a miss and is rewritten.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        # Store only: the folder is created by the first write, so a read-only run leaves no trace.
        self.root = Path(root) if root is not None else default_cache_root()
        self.hits = 0
        self.misses = 0

    def key(self, path: str | Path, settings: Mapping[str, Any]) -> str:
        """``"<sha256 of the file's bytes>-<sha256 of the settings as sorted JSON>"``.

        ``settings`` must be JSON-serialisable (plain numbers, strings, lists, dicts) and should
        name everything that changes the output, including a version of the feature code.
        """
        settings_json = json.dumps(dict(settings), sort_keys=True)
        settings_digest = hashlib.sha256(settings_json.encode("utf-8")).hexdigest()
        return f"{file_digest(path)}-{settings_digest}"

    def entry_path(self, key: str) -> Path:
        # Fan out on the first two hex characters so no folder holds more than ~1/256 of the entries.
        return self.root / key[:2] / f"{key}.npy"

    def get_or_compute(
        self, path: str | Path, settings: Mapping[str, Any], compute: Callable[[Path], np.ndarray]
    ) -> np.ndarray:
        """The cached array for ``(path, settings)``, or ``compute(path)``, stored for next time."""
        path = Path(path)
        entry = self.entry_path(self.key(path, settings))
        cached = self._read(entry)
        if cached is not None:
            return cached
        feats = np.asarray(compute(path))
        self._write(entry, feats)
        return feats

    def lookup(self, path: str | Path, settings: Mapping[str, Any]) -> np.ndarray | None:
        """The cached array for ``(path, settings)``, or None (a miss), for callers that batch their misses."""
        return self._read(self.entry_path(self.key(path, settings)))

    def store(self, path: str | Path, settings: Mapping[str, Any], feats: np.ndarray) -> None:
        self._write(self.entry_path(self.key(path, settings)), np.asarray(feats))

    def _read(self, entry: Path) -> np.ndarray | None:
        cached = _load_entry(entry)
        if cached is None:
            self.misses += 1
        else:
            self.hits += 1
        return cached

    @staticmethod
    def _write(entry: Path, feats: np.ndarray) -> None:
        with atomic_write(entry, mode="wb") as handle:
            # allow_pickle=False: an object array fails here rather than being stored as a pickle.
            np.save(handle, feats, allow_pickle=False)


def _load_entry(entry: Path) -> np.ndarray | None:
    """The stored array, or None when there is none or it does not read back (treated as a miss)."""
    try:
        loaded = np.load(entry, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        # Truncated or otherwise damaged: recompute and overwrite rather than fail the run.
        return None
    if not isinstance(loaded, np.ndarray):  # an .npz archive where a .npy was expected
        loaded.close()
        return None
    return loaded
