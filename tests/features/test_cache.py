"""FeatureCache: hits, misses, damaged entries and where it lives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emofuse.features.cache import FeatureCache

SETTINGS = {"feature": "log_mel", "n_mels": 64, "version": 1}


def counting_compute() -> tuple[Callable[[Path], np.ndarray], list[Path]]:
    """A compute function that records each path it is called with."""
    calls: list[Path] = []

    def compute(path: Path) -> np.ndarray:
        calls.append(path)
        return np.arange(12, dtype=np.float32).reshape(3, 4) + len(path.read_bytes())

    return compute, calls


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.wav"
    path.write_bytes(b"RIFF pretend audio bytes")
    return path


def test_second_call_is_a_hit(tmp_path: Path, clip: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    compute, calls = counting_compute()
    first = cache.get_or_compute(clip, SETTINGS, compute)
    second = cache.get_or_compute(str(clip), dict(SETTINGS), compute)
    assert calls == [clip]
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32


def test_settings_order_does_not_matter_but_values_do(tmp_path: Path, clip: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    reordered = dict(reversed(list(SETTINGS.items())))
    assert cache.key(clip, reordered) == cache.key(clip, SETTINGS)
    compute, calls = counting_compute()
    cache.get_or_compute(clip, SETTINGS, compute)
    cache.get_or_compute(clip, {**SETTINGS, "n_mels": 80}, compute)
    assert len(calls) == 2
    assert (cache.hits, cache.misses) == (0, 2)


def test_changed_file_content_is_a_miss(tmp_path: Path, clip: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    compute, calls = counting_compute()
    before = cache.get_or_compute(clip, SETTINGS, compute)
    clip.write_bytes(b"RIFF different, longer audio bytes")
    after = cache.get_or_compute(clip, SETTINGS, compute)
    assert len(calls) == 2
    assert not np.array_equal(before, after)


def test_same_content_elsewhere_is_a_hit(tmp_path: Path, clip: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(clip.read_bytes())
    compute, calls = counting_compute()
    cache.get_or_compute(clip, SETTINGS, compute)
    cache.get_or_compute(copy, SETTINGS, compute)
    assert calls == [clip]


def test_key_is_content_digest_dash_settings_digest(tmp_path: Path, clip: Path) -> None:
    content, settings = FeatureCache(tmp_path).key(clip, SETTINGS).split("-")
    assert len(content) == len(settings) == 64
    entry = FeatureCache(tmp_path).entry_path(f"{content}-{settings}")
    assert entry.parent.name == content[:2] and entry.suffix == ".npy"


@pytest.mark.parametrize("keep_bytes", [0, 10, 100])
def test_truncated_entry_is_recomputed(tmp_path: Path, clip: Path, keep_bytes: int) -> None:
    cache = FeatureCache(tmp_path / "cache")
    compute, calls = counting_compute()
    expected = cache.get_or_compute(clip, SETTINGS, compute)
    entry = cache.entry_path(cache.key(clip, SETTINGS))
    entry.write_bytes(entry.read_bytes()[:keep_bytes])

    recovered = cache.get_or_compute(clip, SETTINGS, compute)
    np.testing.assert_array_equal(recovered, expected)
    assert len(calls) == 2
    # ...and the entry was rewritten whole: the next call is a hit.
    cache.get_or_compute(clip, SETTINGS, compute)
    assert len(calls) == 2
    assert cache.hits == 1


def test_cache_dir_is_created_on_first_write_only(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "not-yet"
    cache = FeatureCache(root)
    cache.key(clip, SETTINGS)
    assert not root.exists()
    compute, _ = counting_compute()
    cache.get_or_compute(clip, SETTINGS, compute)
    assert root.is_dir()
    assert [p.suffix for p in root.rglob("*") if p.is_file()] == [".npy"]  # no temporary files left


def test_default_root_follows_env_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOFUSE_CACHE_DIR", str(tmp_path / "env"))
    assert FeatureCache().root == tmp_path / "env" / "features"
    monkeypatch.delenv("EMOFUSE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert FeatureCache().root == tmp_path / "home" / ".cache" / "emofuse" / "features"
    assert not (tmp_path / "env").exists() and not (tmp_path / "home").exists()


def test_object_arrays_are_not_pickled(tmp_path: Path, clip: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(ValueError):
        cache.get_or_compute(clip, SETTINGS, lambda _: np.array([{"a": 1}], dtype=object))
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))
