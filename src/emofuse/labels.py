"""The emotion taxonomy: one set of names, each dataset's label map, and column alignment.

Every dataset in emofuse speaks in *canonical* emotion names. A dataset's own names (RAVDESS
"fearful", MELD "joy", a user's "happiness") are mapped to them once, when it is loaded, so a
model never sees two spellings of one emotion.

Canonical emotions, in canonical order::

    neutral, calm, happy, sad, angry, fear, disgust, surprise

Label *sets* are ordered tuples of canonical names. A classifier's probability columns follow its
label set, so moving probabilities between models with different label sets is a column
alignment (:func:`align_probabilities`), never a guess.

The calm decision
-----------------
RAVDESS has *calm*; FER2013, MELD and most face or text corpora do not. When an 8-class voice
model meets a 7-class model (fusion, a shared evaluation), the shared space is :data:`BASIC7` and
*calm folds into neutral*: calm's probability is added to neutral's, and a calm ground-truth label
counts as neutral. Both are low-arousal, non-valenced states, and RAVDESS actors perform calm as a
"neutral-but-relaxed" reading of the same sentence, so neutral is the only defensible target.
The fold is listed in :data:`FOLDS` and nowhere else. (CARER's *love* folds into happy the same
way, for the same reason: positive valence, and no other class comes close.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from emofuse.errors import EmofuseError

if TYPE_CHECKING:
    import numpy as np

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise")
"""Every canonical emotion name, in canonical order."""

# --- label sets (ordered: probability columns follow these) -----------------------------------

RAVDESS8: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise")
"""RAVDESS, in the order of its emotion codes 01..08."""

FER7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013, in the order of its class indices 0..6."""

MELD7: tuple[str, ...] = ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear")
"""MELD, in the order its README lists its emotions."""

CARER6: tuple[str, ...] = ("sad", "happy", "love", "angry", "fear", "surprise")
"""CARER (dair-ai/emotion), in Hugging Face ClassLabel order. *love* is CARER's own class."""

BASIC7: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
"""The shared space for fusing models with different label sets: the canonical emotions less calm."""

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "ravdess8": RAVDESS8,
    "fer7": FER7,
    "meld7": MELD7,
    "carer6": CARER6,
    "basic7": BASIC7,
}

# A few datasets keep a class that has no canonical twin; it is a name of its own, and FOLDS
# says where it goes in a shared space.
EXTRA_NAMES: tuple[str, ...] = ("love",)

FOLDS: dict[str, str] = {"calm": "neutral", "love": "happy"}
"""Where a class goes when the target label set lacks it (the calm decision, see module doc)."""

# --- each dataset's native names -> canonical names -------------------------------------------

RAVDESS_CODES: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
"""RAVDESS emotion code (third field of the file name) -> canonical name."""

RAVDESS_NAMES: dict[str, str] = {
    "neutral": "neutral",
    "calm": "calm",
    "happy": "happy",
    "sad": "sad",
    "angry": "angry",
    "fearful": "fear",
    "disgust": "disgust",
    "surprised": "surprise",
}
"""RAVDESS's own emotion words (its README) -> canonical name."""

FER2013_CLASSES: dict[int, str] = dict(enumerate(FER7))
"""FER2013 class index -> canonical name (FER's own words are already canonical)."""

MELD_NAMES: dict[str, str] = {
    "neutral": "neutral",
    "joy": "happy",
    "surprise": "surprise",
    "anger": "angry",
    "sadness": "sad",
    "disgust": "disgust",
    "fear": "fear",
}

CARER_NAMES: dict[str, str] = {
    "sadness": "sad",
    "joy": "happy",
    "love": "love",
    "anger": "angry",
    "fear": "fear",
    "surprise": "surprise",
}

DATASET_LABEL_MAPS: dict[str, Mapping[str, str]] = {
    "ravdess": RAVDESS_NAMES,
    "fer2013": {name: name for name in FER7},
    "meld": MELD_NAMES,
    "carer": CARER_NAMES,
}

# Spellings users write in folder names and manifests. Lower-cased before lookup.
SYNONYMS: dict[str, str] = {
    **{name: name for name in EMOTIONS},
    **RAVDESS_NAMES,
    **MELD_NAMES,
    "love": "love",
    "happiness": "happy",
    "joyful": "happy",
    "sadness": "sad",
    "anger": "angry",
    "mad": "angry",
    "afraid": "fear",
    "scared": "fear",
    "fearful": "fear",
    "disgusted": "disgust",
    "surprised": "surprise",
    "relaxed": "calm",
    "neu": "neutral",
    "hap": "happy",
    "ang": "angry",
    "fea": "fear",
    "dis": "disgust",
    "sur": "surprise",
}


class UnknownLabelError(EmofuseError, ValueError):
    """Labels that no map knows; the message lists every one of them and the names accepted."""

    def __init__(self, unknown: Iterable[str], *, source: str = "", accepted: Iterable[str] = ()) -> None:
        self.unknown = sorted(set(unknown))
        self.accepted = sorted(set(accepted))
        self.source = source
        where = f" in {source}" if source else ""
        message = f"unknown emotion label(s){where}: {', '.join(repr(u) for u in self.unknown)}"
        if self.accepted:
            message += f". Accepted: {', '.join(self.accepted)}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its own arguments, so it crosses process boundaries as itself.
        return (functools.partial(type(self), source=self.source, accepted=self.accepted), (self.unknown,))


def canonical(label: str, *, label_map: Mapping[str, str] | None = None) -> str:
    """The canonical name of ``label``: through ``label_map`` if given, else the synonym table.

    Raises :class:`UnknownLabelError` for a label neither knows.
    """
    table = label_map if label_map is not None else SYNONYMS
    key = label.strip().lower() if label_map is None else label.strip()
    if key in table:
        return table[key]
    if label_map is not None and key.lower() in table:
        return table[key.lower()]
    raise UnknownLabelError([label], accepted=table.keys())


def map_labels(
    labels: Iterable[str], *, label_map: Mapping[str, str] | None = None, source: str = ""
) -> list[str]:
    """Map many labels at once; every unknown one is collected before raising, not just the first."""
    labels = list(labels)
    table = label_map if label_map is not None else SYNONYMS
    out: list[str] = []
    unknown: list[str] = []
    for label in labels:
        try:
            out.append(canonical(label, label_map=label_map))
        except UnknownLabelError:
            unknown.append(label)
    if unknown:
        raise UnknownLabelError(unknown, source=source, accepted=table.keys())
    return out


def ordered_label_set(labels: Iterable[str]) -> tuple[str, ...]:
    """The distinct canonical labels in ``labels``, in canonical order (extras such as love last)."""
    present = set(labels)
    order = EMOTIONS + EXTRA_NAMES
    unknown = present.difference(order)
    if unknown:
        raise UnknownLabelError(unknown, accepted=order)
    return tuple(name for name in order if name in present)


def target_of(label: str, target: Sequence[str]) -> str | None:
    """Where ``label`` lands in the label set ``target``: itself, its fold (calm -> neutral), or None."""
    if label in target:
        return label
    folded = FOLDS.get(label)
    if folded is not None and folded in target:
        return folded
    return None


def convert_labels(labels: Iterable[str], target: Sequence[str]) -> list[str]:
    """Ground-truth labels moved into label set ``target`` (calm -> neutral when target lacks calm).

    A label with nowhere to go is an error, never silently dropped.
    """
    labels = list(labels)
    out = [target_of(label, target) for label in labels]
    missing = {label for label, mapped in zip(labels, out, strict=True) if mapped is None}
    if missing:
        raise UnknownLabelError(missing, source=f"label set {tuple(target)}", accepted=target)
    return [m for m in out if m is not None]


def alignment_matrix(source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """A 0/1 matrix ``M`` of shape ``(len(source), len(target))`` with ``probs @ M`` the aligned columns.

    Each source column goes to one target column (itself or its fold); a source column with no
    place in ``target`` raises, because dropping probability mass would make the rows lie.
    Target columns that no source column feeds stay zero: the model has no opinion there, and
    fusion uses :func:`coverage` to know it.
    """
    import numpy as np

    matrix = np.zeros((len(source), len(target)), dtype=np.float64)
    index = {name: j for j, name in enumerate(target)}
    orphans = []
    for i, name in enumerate(source):
        mapped = target_of(name, target)
        if mapped is None:
            orphans.append(name)
        else:
            matrix[i, index[mapped]] = 1.0
    if orphans:
        raise UnknownLabelError(orphans, source=f"alignment to {tuple(target)}", accepted=target)
    return matrix


def align_probabilities(probs: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Move probability columns from label set ``source`` to label set ``target``.

    ``probs`` is ``(n, len(source))`` (or ``(len(source),)``); the result is ``(n, len(target))``
    with the same row sums. Example: RAVDESS8 -> BASIC7 adds calm's column to neutral's.
    """
    import numpy as np

    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[-1] != len(source):
        raise ValueError(f"probabilities have {probs.shape[-1]} columns but the label set has {len(source)}")
    return probs @ alignment_matrix(source, target)


def coverage(source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``target``: True where some column of ``source`` lands."""
    return alignment_matrix(source, target).sum(axis=0) > 0


def shared_label_set(*label_sets: Sequence[str]) -> tuple[str, ...]:
    """The label set several models can all be aligned into.

    Identical sets stay as they are; otherwise the union after folding (calm -> neutral, love ->
    happy) in canonical order, which for RAVDESS8 + FER7 is :data:`BASIC7`.
    """
    first = tuple(label_sets[0])
    if all(tuple(s) == first for s in label_sets):
        return first
    folded = {FOLDS.get(name, name) for s in label_sets for name in s}
    return ordered_label_set(folded)
