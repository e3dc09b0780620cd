"""Your own data: a folder of ``<label>/<files>``, or a manifest (CSV or JSON lines).

Labels are mapped through the taxonomy (:data:`emofuse.labels.SYNONYMS`, or a ``label_map`` you
pass); every unknown label is listed in one error. A manifest has columns ``path`` and ``label``
and optionally ``speaker``, ``split`` and ``sha256``; relative paths are relative to the manifest.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path

from emofuse._progress import track
from emofuse.data._base import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, Dataset, Modality, Sample
from emofuse.data._media import probe_audio, probe_image
from emofuse.errors import BadFilesCollector, DataError
from emofuse.labels import SYNONYMS, UnknownLabelError, canonical, ordered_label_set

MANIFEST_COLUMNS = ("path", "label", "speaker", "split", "sha256")


def _modality_of(path: Path) -> Modality | None:
    suffix = path.suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None


def _check_labels(raw: list[str], label_map: Mapping[str, str] | None, source: Path) -> dict[str, str]:
    """Map each distinct raw label to a canonical one; raise once, listing every unknown label."""
    mapped: dict[str, str] = {}
    unknown: list[str] = []
    for label in sorted(set(raw)):
        try:
            mapped[label] = canonical(label, label_map=label_map)
        except UnknownLabelError:
            unknown.append(label)
    if unknown:
        accepted = (label_map or SYNONYMS).keys()
        raise UnknownLabelError(unknown, source=str(source), accepted=accepted)
    return mapped


def _single_modality(paths: list[Path], source: Path) -> Modality:
    kinds = {m for m in (_modality_of(p) for p in paths) if m is not None}
    if not kinds:
        raise DataError(source, "no audio or image files found")
    if len(kinds) > 1:
        raise DataError(source, "mixes audio and image files; keep one modality per dataset")
    return kinds.pop()


def _probe(path: Path, modality: Modality) -> None:
    if modality == "audio":
        probe_audio(path)
    else:
        probe_image(path)


def load_folder(root: str | Path, *, label_map: Mapping[str, str] | None = None, name: str | None = None,
                skip_bad: bool = False, check_media: bool = True, progress: bool = False) -> Dataset:
    """Load ``root/<label>/<files>`` (audio or images, any depth below the label folder)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "expected a folder of <label>/<files>")
    label_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not label_dirs:
        raise DataError(root, "no label folders found (expected <label>/<files>)")
    mapped = _check_labels([d.name for d in label_dirs], label_map, root)
    entries = [
        (path, mapped[d.name])
        for d in label_dirs
        for path in sorted(d.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]
    modality = _single_modality([p for p, _ in entries], root)
    collector = BadFilesCollector(skip_bad=skip_bad)
    samples: list[Sample] = []
    for path, label in track(entries, description=f"Reading {root.name}", total=len(entries), enabled=progress):
        if _modality_of(path) != modality:
            collector.add(DataError(path, f"not an {modality} file"))
            continue
        if check_media:
            try:
                _probe(path, modality)
            except DataError as exc:
                collector.add(exc)
                continue
        samples.append(Sample(path=str(path), label=label))
    return Dataset(name=name or root.name, modality=modality, labels=ordered_label_set(mapped.values()),
                   samples=samples, root=root, bad_files=collector.bad)


def read_manifest_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV (with header) or JSON-lines manifest, as string dicts with a ``_where`` key."""
    if not path.is_file():
        raise DataError(path, "manifest not found")
    rows: list[dict[str, str]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {line_no}", f"invalid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path} line {line_no}", "each line must be a JSON object")
                rows.append({k: "" if v is None else str(v) for k, v in obj.items()} | {"_where": f"{path} line {line_no}"})
    else:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            sample = handle.read(4096)
            handle.seek(0)
            delimiter = "\t" if path.suffix.lower() == ".tsv" or sample.count("\t") > sample.count(",") else ","
            reader = csv.DictReader(handle, delimiter=delimiter)
            for line_no, row in enumerate(reader, start=2):
                rows.append({(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                            | {"_where": f"{path} line {line_no}"})
    if not rows:
        raise DataError(path, "manifest has no rows")
    missing = [c for c in ("path", "label") if c not in rows[0]]
    if missing:
        raise DataError(path, f"manifest lacks column(s) {', '.join(missing)} (needs path and label)")
    return rows


def load_manifest(manifest: str | Path, *, label_map: Mapping[str, str] | None = None, name: str | None = None,
                  skip_bad: bool = False, check_media: bool = True, progress: bool = False) -> Dataset:
    """Load the files a CSV/JSONL manifest lists, with labels, speakers and splits."""
    manifest = Path(manifest)
    rows = read_manifest_rows(manifest)
    mapped = _check_labels([r["label"] for r in rows], label_map, manifest)
    base = manifest.parent
    paths = [(base / r["path"]) if not Path(r["path"]).is_absolute() else Path(r["path"]) for r in rows]
    modality = _single_modality(paths, manifest)
    collector = BadFilesCollector(skip_bad=skip_bad)
    samples: list[Sample] = []
    for row, path in track(list(zip(rows, paths, strict=True)), description=f"Reading {manifest.name}",
                           total=len(rows), enabled=progress):
        if not row["path"]:
            collector.add(DataError(row["_where"], "empty path"))
            continue
        if _modality_of(path) != modality:
            collector.add(DataError(path, f"not an {modality} file ({row['_where']})"))
            continue
        if check_media:
            try:
                _probe(path, modality)
            except DataError as exc:
                collector.add(DataError(path, f"{exc.problem} ({row['_where']})"))
                continue
        meta = {"sha256": row["sha256"]} if row.get("sha256") else {}
        samples.append(Sample(path=str(path), label=mapped[row["label"]], speaker=row.get("speaker") or None,
                              split=row.get("split") or None, meta=meta))
    return Dataset(name=name or manifest.stem, modality=modality, labels=ordered_label_set(mapped.values()),
                   samples=samples, root=base, bad_files=collector.bad)
