"""Fetching the official archives (with checksums, resume and a progress bar) and ingesting local copies.

Downloads go to ``<name>.part`` beside the destination and resume from there after a broken
connection, in the same run (a few retries) or the next one. Only a file whose checksum matches
is renamed to its final name. Extraction goes to a temporary folder first and each file is then
moved into place, so an interrupted extraction leaves nothing half-written in the target.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from emofuse.errors import DataError, EmofuseError

USER_AGENT = "emofuse-downloader/0.1 (+https://github.com/emofuse)"
CHUNK_BYTES = 1 << 16


@dataclass(frozen=True)
class Archive:
    """A file to fetch: where from, and the checksum(s) it must match."""

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None


ZENODO_RAVDESS = "https://zenodo.org/records/1188976/files"
RAVDESS_ARCHIVES: dict[str, Archive] = {
    "speech": Archive(
        name="Audio_Speech_Actors_01-24.zip",
        url=f"{ZENODO_RAVDESS}/Audio_Speech_Actors_01-24.zip?download=1",
        md5="bc696df654c87fed845eb13823edef8a",
        size_bytes=208_468_073,
    ),
    "song": Archive(
        name="Audio_Song_Actors_01-24.zip",
        url=f"{ZENODO_RAVDESS}/Audio_Song_Actors_01-24.zip?download=1",
        md5="5411230427d67a21e18aa4d466e6d1b9",
        size_bytes=225_505_317,
    ),
}

FER2013_HOWTO = """\
FER2013 cannot be downloaded without a Kaggle account, so emofuse does not fetch it for you.

Get it from either of:
  * the official challenge data (fer2013.csv inside fer2013.tar.gz):
    https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data
    (with the Kaggle CLI: kaggle competitions download -c challenges-in-representation-learning-facial-expression-recognition-challenge)
  * the image-folder form (train/<class>/Training_*.jpg, test/<class>/PublicTest_*.jpg ...):
    https://www.kaggle.com/datasets/msambare/fer2013

Then ingest it:
    emofuse data download fer2013 --from PATH --to DIR
PATH may be fer2013.csv, fer2013.csv.gz, fer2013.tar.gz, a .zip, or a folder.
FER2013 is released for research use (Goodfellow et al., 2013); cite the challenge report."""


class DownloadError(EmofuseError):
    """A download failed for good (after retries), or its checksum did not match."""


def _digests(path: Path) -> dict[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            md5.update(chunk)
            sha256.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def checksum_problem(path: Path, archive: Archive) -> str | None:
    """None when ``path`` matches the archive's checksums, else what differs."""
    if archive.md5 is None and archive.sha256 is None:
        return None
    found = _digests(path)
    for kind in ("md5", "sha256"):
        expected = getattr(archive, kind)
        if expected and found[kind] != expected.lower():
            return f"{kind} mismatch: expected {expected}, got {found[kind]}"
    return None


@contextlib.contextmanager
def _bar(description: str, total: int | None, enabled: bool) -> Iterator:
    if not enabled:
        yield lambda advance: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda advance: progress.update(task, advance=advance)


def _fetch_once(archive: Archive, part: Path, *, progress: bool, timeout_seconds: float) -> None:
    """One HTTP request: continue ``part`` from its current size (Range) or start over."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(archive.url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_seconds)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return  # the range starts at the end: the partial file is already complete
        raise
    with response:
        if offset and response.status == 206:
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # the server ignored Range: start again from byte 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else archive.size_bytes
        with open(part, mode) as out, _bar(f"Downloading {archive.name}", total, progress) as advance:
            advance(offset)
            received = 0
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                advance(len(chunk))
        if length is not None and received < int(length):
            raise http.client.IncompleteRead(b"", int(length) - received)


def download(archive: Archive, dest_dir: str | Path, *, progress: bool = True, retries: int = 3,
             timeout_seconds: float = 60.0) -> Path:
    """Fetch ``archive`` into ``dest_dir``, resuming a partial download; return the verified file.

    A file already present with the right checksum is not fetched again.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / archive.name
    if final.exists() and checksum_problem(final, archive) is None:
        return final
    part = dest_dir / f"{archive.name}.part"
    last_error: Exception | None = None
    for _attempt in range(retries + 1):
        try:
            _fetch_once(archive, part, progress=progress, timeout_seconds=timeout_seconds)
            last_error = None
            break
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"{archive.url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            last_error = exc  # keep the partial file and resume from where it stopped
    if last_error is not None:
        raise DownloadError(f"{archive.url}: download failed after {retries + 1} attempts ({last_error}); "
                            f"run the same command again to resume from {part}")
    problem = checksum_problem(part, archive)
    if problem is not None:
        part.unlink()
        raise DownloadError(f"{archive.name}: {problem}; the corrupt download was removed, try again")
    os.replace(part, final)
    return final


# --- extraction and ingestion ---------------------------------------------------------------


def _safe_members_zip(handle: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = []
    for info in handle.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name).parts:
            raise DataError(name, "archive member escapes the target folder; refusing to extract")
        if "__MACOSX" in Path(name).parts:
            continue
        members.append(info)
    return members


def extract(archive_path: str | Path, dest_dir: str | Path) -> list[Path]:
    """Unpack a .zip / .tar(.gz) into ``dest_dir`` (merging with what is there); return the files placed."""
    archive_path, dest_dir = Path(archive_path), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=dest_dir) as tmp:
        staging = Path(tmp)
        try:
            if zipfile.is_zipfile(archive_path):
                with zipfile.ZipFile(archive_path) as handle:
                    handle.extractall(staging, members=_safe_members_zip(handle))
            elif tarfile.is_tarfile(archive_path):
                with tarfile.open(archive_path) as handle:
                    handle.extractall(staging, filter="data")
            else:
                raise DataError(archive_path, "not a zip or tar archive (or truncated: its index is missing)")
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise DataError(archive_path, f"archive is corrupt or truncated ({exc})") from None
        return _move_tree(staging, dest_dir)


def _move_tree(src: Path, dest: Path, *, copy: bool = False) -> list[Path]:
    placed = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy:
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, target)
        else:
            os.replace(path, target)
        placed.append(target)
    return placed


def ingest(source: str | Path, dest_dir: str | Path) -> list[Path]:
    """Bring a copy the user already has into ``dest_dir``: unpack an archive, copy a file or folder."""
    source, dest_dir = Path(source), Path(dest_dir)
    if not source.exists():
        raise DataError(source, "no such file or folder")
    if source.is_dir():
        if source.resolve() == dest_dir.resolve():
            return sorted(p for p in dest_dir.rglob("*") if p.is_file())
        return _move_tree(source, dest_dir, copy=True)
    if zipfile.is_zipfile(source) or tarfile.is_tarfile(source):
        return extract(source, dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / source.name
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copy2(source, tmp)
    os.replace(tmp, target)
    return [target]


def fetch_ravdess(to: str | Path, *, parts: tuple[str, ...] = ("speech",), source: str | Path | None = None,
                  archives: dict[str, Archive] | None = None, keep_archive: bool = False,
                  progress: bool = True) -> Path:
    """Put RAVDESS audio under ``to`` (``Actor_XX/…``): ingest ``source`` or download the Zenodo archives.

    ``parts`` picks ``speech`` and/or ``song``. ``archives`` overrides where they come from (mirrors,
    tests). Archives are kept in ``to/.downloads`` only with ``keep_archive``.
    """
    to = Path(to)
    if source is not None:
        ingest(source, to)
        return to
    table = archives or RAVDESS_ARCHIVES
    unknown = [p for p in parts if p not in table]
    if unknown:
        raise EmofuseError(f"unknown RAVDESS part(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    cache = to / ".downloads"
    for part in parts:
        archive_path = download(table[part], cache, progress=progress)
        extract(archive_path, to)
        if not keep_archive:
            archive_path.unlink()
    with contextlib.suppress(OSError):
        cache.rmdir()
    return to


def fetch_fer2013(to: str | Path, *, source: str | Path | None) -> Path:
    """Ingest a FER2013 copy the user has (csv, csv.gz, tar.gz, zip or folder) into ``to``."""
    if source is None:
        raise EmofuseError(FER2013_HOWTO)
    to = Path(to)
    ingest(source, to)
    return to
