"""Shared fixtures: small generated datasets in the real formats, and the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emofuse.data.synthetic import make_fer2013_csv, make_fer2013_folders, make_ravdess

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _private_feature_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never read or fill the user's feature cache (~/.cache/emofuse)."""
    os.environ["EMOFUSE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


def real_data_dir() -> Path:
    return Path(os.environ.get("EMOFUSE_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real datasets folder; tests using it are skipped when it is absent."""
    root = real_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set EMOFUSE_DATA_DIR)")
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "real_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session")
def ravdess_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 actors × 15 clips (every emotion and intensity), 0.3 s tones, 16 kHz WAV."""
    root = tmp_path_factory.mktemp("ravdess")
    make_ravdess(root, seconds=0.3)
    return root


@pytest.fixture(scope="session")
def fer_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fer2013_csv(tmp_path_factory.mktemp("fer_csv") / "fer2013.csv")


@pytest.fixture(scope="session")
def fer_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fer_folders")
    make_fer2013_folders(root)
    return root
