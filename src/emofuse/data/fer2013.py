"""FER2013: 48×48 grey faces in 7 emotions, with the official Training / PublicTest / PrivateTest split.

Two forms are read:

* the official ``fer2013.csv`` (columns ``emotion,pixels,Usage``; ``.csv.gz`` too, or a folder
  holding it, as the Kaggle ``fer2013.tar.gz`` unpacks), pixels kept inline in ``dataset.pixels``;
* the common image-folder form ``train/<class>/Training_*.jpg`` and
  ``test/<class>/{PublicTest,PrivateTest}_*.jpg``, where the file-name prefix carries the split.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

from emofuse._progress import track
from emofuse.data._base import IMAGE_EXTENSIONS, Dataset, Sample
from emofuse.data._media import probe_image
from emofuse.errors import BadFilesCollector, DataError
from emofuse.labels import FER7, FER2013_CLASSES

USAGES = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIDE = 48
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE
CSV_NAMES = ("fer2013.csv", "fer2013.csv.gz", "icml_face_data.csv")
_PREFIX = re.compile(r"^(Training|PublicTest|PrivateTest)_")
_FOLDER_SPLIT = {"train": "Training", "test": "Test"}


def find_fer2013_csv(root: Path) -> Path | None:
    """The official CSV inside ``root`` (directly, or one folder down as the Kaggle tarball unpacks)."""
    for name in CSV_NAMES:
        for candidate in (root / name, root / "fer2013" / name):
            if candidate.is_file():
                return candidate
    return None


def load_fer2013(path: str | Path, *, skip_bad: bool = False, check_images: bool = True,
                 progress: bool = False) -> Dataset:
    """Load FER2013 from ``fer2013.csv[.gz]``, a folder holding it, or the image-folder form.

    Samples keep the official split in ``sample.split``. A bad row or file raises
    :class:`DataError` naming it; with ``skip_bad`` it is listed in ``dataset.bad_files``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if path.is_file():
        return _load_csv(path, skip_bad=skip_bad, progress=progress)
    csv_path = find_fer2013_csv(path)
    if csv_path is not None:
        return _load_csv(csv_path, skip_bad=skip_bad, progress=progress)
    if any((path / sub).is_dir() for sub in _FOLDER_SPLIT):
        return _load_folders(path, skip_bad=skip_bad, check_images=check_images, progress=progress)
    raise DataError(path, "not FER2013: expected fer2013.csv(.gz) or train/<class>/ and test/<class>/ folders")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _load_csv(path: Path, *, skip_bad: bool, progress: bool) -> Dataset:
    import numpy as np

    collector = BadFilesCollector(skip_bad=skip_bad)
    samples: list[Sample] = []
    images: list[np.ndarray] = []
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            try:
                header = [h.strip().lower() for h in next(reader)]
            except StopIteration:
                raise DataError(path, "empty CSV (no header)") from None
            missing = [c for c in ("emotion", "pixels", "usage") if c not in header]
            if missing:
                hint = " (without Usage the official split cannot be recovered)" if missing == ["usage"] else ""
                raise DataError(path, f"not a fer2013.csv: missing column(s) {', '.join(missing)}{hint}; "
                                f"found {', '.join(header)}")
            col = {name: header.index(name) for name in ("emotion", "pixels", "usage")}
            for line_no, row in track(enumerate(reader, start=2), description="Reading fer2013.csv",
                                      enabled=progress):
                where = f"{path} line {line_no}"
                try:
                    label, split, pixels = _parse_row(row, col)
                except ValueError as exc:
                    collector.add(DataError(where, str(exc)))
                    continue
                samples.append(Sample(path=f"{path}#line={line_no}", label=label, split=split,
                                      meta={"line": line_no}))
                images.append(pixels)
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise DataError(path, f"cannot read the CSV ({exc})") from None
    pixels = np.stack(images) if images else np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    return Dataset(name="fer2013", modality="image", labels=FER7, samples=samples, root=path.parent,
                   bad_files=collector.bad, pixels=pixels)


def _parse_row(row: list[str], col: dict[str, int]):  # -> tuple[str, str, np.ndarray]
    """The row's label, split and pixels; a ValueError naming every problem the row has, not only the first."""
    import numpy as np

    if len(row) < len(col):
        raise ValueError(f"expected at least {len(col)} fields, found {len(row)}")
    problems = []
    emotion = row[col["emotion"]].strip()
    if not emotion.isdigit() or int(emotion) not in FER2013_CLASSES:
        problems.append(f"emotion {emotion!r} is not a FER2013 class index 0..6")
    usage = row[col["usage"]].strip()
    if usage not in USAGES:
        problems.append(f"Usage {usage!r} is not one of {', '.join(USAGES)}")
    values = None
    try:
        values = np.array(row[col["pixels"]].split(), dtype=np.int32)
    except ValueError:
        problems.append("pixels must be space-separated integers")
    if values is not None and values.size != N_PIXELS:
        problems.append(f"expected {N_PIXELS} pixel values (48×48), found {values.size}")
    elif values is not None and (values.min() < 0 or values.max() > 255):
        problems.append("pixel values must lie in 0..255")
    if problems or values is None:
        raise ValueError("; ".join(problems))
    return FER2013_CLASSES[int(emotion)], usage, values.astype(np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE)


def _class_of(folder: str) -> str | None:
    name = folder.strip().lower()
    if name.isdigit() and int(name) in FER2013_CLASSES:
        return FER2013_CLASSES[int(name)]
    return name if name in FER7 else None


def _load_folders(root: Path, *, skip_bad: bool, check_images: bool, progress: bool) -> Dataset:
    collector = BadFilesCollector(skip_bad=skip_bad)
    files = sorted(
        p for sub in _FOLDER_SPLIT if (root / sub).is_dir()
        for p in (root / sub).rglob("*") if p.is_file() and not p.name.startswith(".")
    )
    samples: list[Sample] = []
    for path in track(files, description="Reading FER2013 images", total=len(files), enabled=progress):
        rel = path.relative_to(root)
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            collector.add(DataError(path, "not an image file (expected .jpg/.png inside <split>/<class>/)"))
            continue
        if len(rel.parts) != 3:
            collector.add(DataError(path, "expected <train|test>/<class>/<image>"))
            continue
        top, folder, _ = rel.parts
        label = _class_of(folder)
        if label is None:
            collector.add(DataError(path, f"class folder {folder!r} is not a FER2013 class ({', '.join(FER7)})"))
            continue
        prefix = _PREFIX.match(path.name)
        split = prefix.group(1) if prefix else _FOLDER_SPLIT[top]
        if (top == "train") != (split == "Training"):
            collector.add(DataError(path, f"a {split} image inside {top}/"))
            continue
        if check_images:
            try:
                size = probe_image(path)
            except DataError as exc:
                collector.add(exc)
                continue
            if size != (IMAGE_SIDE, IMAGE_SIDE):
                collector.add(DataError(path, f"image is {size[0]}×{size[1]}, FER2013 images are 48×48"))
                continue
        samples.append(Sample(path=str(path), label=label, split=split))
    if not samples and not collector.bad:
        raise DataError(root, "no FER2013 images found under train/ or test/")
    return Dataset(name="fer2013", modality="image", labels=FER7, samples=samples, root=root,
                   bad_files=collector.bad)
