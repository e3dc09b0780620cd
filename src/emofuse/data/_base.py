"""The one dataset shape every loader returns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from emofuse.errors import BadFile

if TYPE_CHECKING:
    import numpy as np

Modality = Literal["audio", "image", "text"]

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".opus", ".webm", ".mp4"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})


# Splits are listed train-side first, whatever order the files came in.
_SPLIT_ORDER = ("training", "train", "publictest", "validation", "val", "dev", "privatetest", "test")


def _split_order(split: str) -> tuple[int, str]:
    key = split.lower()
    return (_SPLIT_ORDER.index(key) if key in _SPLIT_ORDER else len(_SPLIT_ORDER), key)


@dataclass(frozen=True)
class Sample:
    """One clip, image or utterance.

    ``path`` is the file, or ``<csv>#<row>`` for data stored inline (fer2013.csv pixels).
    ``label`` is a canonical emotion name (see :mod:`emofuse.labels`). ``speaker`` identifies the
    person (RAVDESS actor, manifest speaker) or is None when unknown. ``split`` is the dataset's
    own split name (FER2013 ``Training``/``PublicTest``/``PrivateTest``) or None.
    """

    path: str
    label: str
    speaker: str | None = None
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """A loaded dataset: samples in a fixed order, its label set, and the files it could not use.

    ``pixels`` holds images inline when the source stores them inline (fer2013.csv): shape
    ``(n, 48, 48)`` uint8, row ``i`` belongs to ``samples[i]``; ``texts`` likewise holds the
    utterances of a text dataset.
    """

    name: str
    modality: Modality
    labels: tuple[str, ...]
    samples: list[Sample]
    root: Path
    bad_files: list[BadFile] = field(default_factory=list)
    pixels: np.ndarray | None = None
    texts: list[str] | None = None  # text datasets hold their utterances inline, row i for samples[i]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def label_counts(self) -> dict[str, int]:
        """Samples per label, in label-set order (labels with no sample show 0)."""
        counts = Counter(s.label for s in self.samples)
        return {label: counts.get(label, 0) for label in self.labels}

    def speakers(self) -> list[str]:
        """Distinct known speakers, sorted."""
        return sorted({s.speaker for s in self.samples if s.speaker is not None})

    def split_counts(self) -> dict[str, int]:
        """Samples per dataset-defined split, train side first (empty when it defines none)."""
        counts = Counter(s.split for s in self.samples if s.split is not None)
        return {split: counts[split] for split in sorted(counts, key=_split_order)}

    def label_indices(self) -> np.ndarray:
        """Integer targets ``(n,)``: the position of each sample's label in :attr:`labels`."""
        import numpy as np

        index = {label: i for i, label in enumerate(self.labels)}
        return np.fromiter((index[s.label] for s in self.samples), dtype=np.int64, count=len(self.samples))

    def model_inputs(self) -> Any:
        """What a model of this modality is fed, in sample order: the inline pixels ``(n, 48, 48)``
        or texts when the dataset holds them, else the sample paths."""
        if self.pixels is not None:
            return self.pixels
        return list(self.texts) if self.texts is not None else [s.path for s in self.samples]

    def subset(self, indices: Sequence[int] | Iterable[int]) -> Dataset:
        """A dataset of the given sample positions; label set and bad-file report are kept."""
        import numpy as np

        idx = np.asarray(list(indices), dtype=np.int64)
        return replace(
            self,
            samples=[self.samples[i] for i in idx],
            pixels=None if self.pixels is None else self.pixels[idx],
            texts=None if self.texts is None else [self.texts[i] for i in idx],
        )
