"""Text emotion datasets: MELD utterances and CARER (dair-ai/emotion) sentences.

Both keep their official split in ``sample.split`` (MELD ``train``/``dev``/``test``, CARER
``train``/``val``/``test``) and the text inline in ``dataset.texts`` (row ``i`` belongs to
``samples[i]``); ``sample.path`` is ``<file>#<row>``. Labels are mapped to canonical names
(MELD *joy* -> happy, CARER *love* stays its own class; see :mod:`emofuse.labels`).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from emofuse.data._base import Dataset, Sample
from emofuse.errors import BadFilesCollector, DataError
from emofuse.labels import CARER6, CARER_NAMES, MELD7, MELD_NAMES, UnknownLabelError, canonical

MELD_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
CARER_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
_C1 = re.compile("[\x80-\x9f]")


def _fix_cp1252(text: str) -> str:
    """MELD's 2018 CSVs carry cp1252 punctuation as C1 control characters (U+0092 for ’): map them back."""
    def repl(m: re.Match[str]) -> str:
        try:
            return m.group().encode("latin-1").decode("cp1252")
        except UnicodeDecodeError:
            return ""

    return _C1.sub(repl, text).replace("\u00a0", " ")


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def load_meld(path: str | Path, *, skip_bad: bool = False, progress: bool = False) -> Dataset:
    """MELD's three ``*_sent_emo.csv`` files (either encoding) from a folder. Speakers are the
    characters (``Chandler``), so a dialogue-level split keeps its speakers honest only per split."""
    del progress  # 13 708 rows: instant
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "not a folder holding MELD's train/dev/test_sent_emo.csv")
    collector = BadFilesCollector(skip_bad=skip_bad)
    samples: list[Sample] = []
    texts: list[str] = []
    found = [split for split, name in MELD_FILES.items() if (root / name).is_file()]
    if not found:
        raise DataError(root, f"no MELD CSVs ({', '.join(MELD_FILES.values())})")
    for split in found:
        file = root / MELD_FILES[split]
        # Not splitlines(): the 2018 files hold U+0085, which it would take for a line break.
        rows = list(csv.DictReader(io.StringIO(_read_text(file), newline="")))
        if rows and not {"Utterance", "Emotion"} <= set(rows[0]):
            raise DataError(file, "missing the Utterance and Emotion columns: not a MELD CSV")
        for i, row in enumerate(rows):
            where = f"{file}#{i}"
            try:
                label = canonical((row["Emotion"] or "").strip().lower(), label_map=MELD_NAMES)
            except UnknownLabelError as exc:
                collector.add(DataError(where, str(exc)))
                continue
            text = _fix_cp1252(row["Utterance"]).strip()
            samples.append(Sample(path=where, label=label, speaker=row.get("Speaker") or None, split=split,
                                  meta={"dialogue": row.get("Dialogue_ID"), "utterance": row.get("Utterance_ID"),
                                        "sentiment": row.get("Sentiment")}))
            texts.append(text)
    return Dataset(name="meld", modality="text", labels=MELD7, samples=samples, root=root,
                   bad_files=collector.bad, texts=texts)


def load_carer(path: str | Path, *, skip_bad: bool = False, progress: bool = False) -> Dataset:
    """CARER's ``train.txt``, ``val.txt``, ``test.txt`` (``text;label`` per line) from a folder."""
    del progress
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "not a folder holding CARER's train.txt / val.txt / test.txt")
    found = [split for split, name in CARER_FILES.items() if (root / name).is_file()]
    if not found:
        raise DataError(root, f"no CARER files ({', '.join(CARER_FILES.values())})")
    collector = BadFilesCollector(skip_bad=skip_bad)
    samples: list[Sample] = []
    texts: list[str] = []
    for split in found:
        file = root / CARER_FILES[split]
        for i, line in enumerate(_read_text(file).replace("\r\n", "\n").split("\n")):
            if not line.strip():
                continue
            text, sep, name = line.rpartition(";")
            where = f"{file}#{i}"
            try:
                if not sep:
                    raise UnknownLabelError("no ';' before a label")
                label = canonical(name.strip().lower(), label_map=CARER_NAMES)
            except UnknownLabelError as exc:
                collector.add(DataError(where, f"not a 'text;label' line: {exc}"))
                continue
            samples.append(Sample(path=where, label=label, split=split))
            texts.append(text.strip())
    return Dataset(name="carer", modality="text", labels=CARER6, samples=samples, root=root,
                   bad_files=collector.bad, texts=texts)
