"""What is in a dataset (`emofuse data summary`) and whether every file of it is sound (`data verify`)."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emofuse._io import file_digest
from emofuse._progress import track
from emofuse.data._base import Dataset
from emofuse.data._media import decode_audio, decode_image
from emofuse.errors import BadFile, DataError

MAX_DUPLICATE_EXAMPLES = 10


def content_hashes(dataset: Dataset, *, progress: bool = False) -> list[str]:
    """sha256 of each sample's content: the file's bytes, the inline pixels' bytes, or the text."""
    if dataset.pixels is not None:
        return [hashlib.sha256(row.tobytes()).hexdigest() for row in dataset.pixels]
    if dataset.texts is not None:  # the same utterance twice is a duplicate, whatever its row
        return [hashlib.sha256(t.strip().lower().encode("utf-8")).hexdigest() for t in dataset.texts]
    return [file_digest(s.path) for s in track(dataset.samples, description="Hashing", total=len(dataset),
                                                   enabled=progress)]


def find_duplicates(dataset: Dataset, hashes: list[str]) -> dict[str, Any]:
    """Groups of samples with identical content, and how many of those groups disagree on the label."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(hashes):
        groups[digest].append(i)
    dupes = [members for members in groups.values() if len(members) > 1]
    conflicting = [g for g in dupes if len({dataset.samples[i].label for i in g}) > 1]
    return {
        "groups": len(dupes),
        "extra_copies": sum(len(g) - 1 for g in dupes),
        "conflicting_labels": len(conflicting),
        "examples": [[dataset.samples[i].path for i in g] for g in dupes[:MAX_DUPLICATE_EXAMPLES]],
    }


def summarize(dataset: Dataset, *, duplicates: bool = True, progress: bool = False) -> dict[str, Any]:
    """The summary ``emofuse data summary --json`` prints."""
    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "path": str(dataset.root),
        "modality": dataset.modality,
        "clips": len(dataset),
        "speakers": len(dataset.speakers()),
        "labels": dataset.label_counts(),
        "splits": dataset.split_counts(),
    }
    if duplicates:
        summary["duplicates"] = find_duplicates(dataset, content_hashes(dataset, progress=progress))
    summary["unreadable"] = [bad.to_dict() for bad in dataset.bad_files]
    return summary


# --- verify ---------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    """Outcome of decoding every file and checking every checksum that is known."""

    files: int = 0
    decoded: int = 0
    checksums_checked: int = 0
    bad: list[BadFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.missing

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "decoded": self.decoded,
            "checksums_checked": self.checksums_checked,
            "bad": [b.to_dict() for b in self.bad],
            "missing": self.missing,
        }


def known_checksums(root: Path) -> dict[Path, str]:
    """sha256 per file from a ``SHA256SUMS``, ``MANIFEST.tsv`` or ``manifest.csv`` in ``root``.

    Paths are resolved against ``root``. Empty when the folder ships no checksums.
    """
    sums: dict[Path, str] = {}
    sha_file = root / "SHA256SUMS"
    if sha_file.is_file():
        for line in sha_file.read_text(encoding="utf-8").splitlines():
            parts = line.strip().split(maxsplit=1)
            if len(parts) == 2:
                sums[(root / parts[1].lstrip("*")).resolve()] = parts[0].lower()
    for name, delimiter in (("MANIFEST.tsv", "\t"), ("manifest.csv", ","), ("manifest.tsv", "\t")):
        manifest = root / name
        if not manifest.is_file():
            continue
        with open(manifest, encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle, delimiter=delimiter):
                path, digest = row.get("path"), row.get("sha256")
                if path and digest:
                    sums.setdefault((root / path).resolve(), digest.lower())
    return sums


def verify(dataset: Dataset, *, progress: bool = False) -> VerifyReport:
    """Decode every sample of ``dataset`` to the last sample and compare every known checksum.

    Files the loader already rejected (``dataset.bad_files``) are reported too, and files that a
    checksum list names but that are absent are listed as ``missing``.
    """
    report = VerifyReport(files=len(dataset) + len(dataset.bad_files), bad=list(dataset.bad_files))
    if dataset.pixels is not None:
        # Inline pixels were parsed and range-checked row by row when the CSV loaded.
        report.decoded = len(dataset)
        return report
    sums = known_checksums(dataset.root)
    if dataset.texts is not None:
        # Inline texts were parsed row by row when the files loaded; what is left is each source
        # file's checksum, where the folder lists one.
        report.files = len(dataset.texts) + len(dataset.bad_files)
        report.decoded = len(dataset.texts)
        for source, listed in sums.items():
            if not source.exists():
                report.missing.append(str(source))
                continue
            report.checksums_checked += 1
            found = file_digest(source)
            if found != listed:
                report.bad.append(BadFile(str(source), f"sha256 mismatch: expected {listed}, found {found}"))
        return report
    expected_by_path = dict(sums)
    decode = decode_audio if dataset.modality == "audio" else decode_image
    for sample in track(dataset.samples, description="Verifying", total=len(dataset), enabled=progress):
        path = Path(sample.path)
        resolved = path.resolve()
        expected = sample.meta.get("sha256") or expected_by_path.pop(resolved, None)
        expected_by_path.pop(resolved, None)
        try:
            decode(path)
        except DataError as exc:
            report.bad.append(exc.as_bad_file())
            continue
        if expected:
            report.checksums_checked += 1
            actual = file_digest(path)
            if actual != str(expected).lower():
                report.bad.append(BadFile(str(path), f"sha256 mismatch: expected {expected}, found {actual}"))
                continue
        report.decoded += 1
    rejected = {Path(b.path).resolve() for b in dataset.bad_files}
    report.missing = sorted(str(p) for p in expected_by_path if p not in rejected and not p.exists())
    return report
