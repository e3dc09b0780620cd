"""Evaluation protocols: named, deterministic ways to cut a dataset into train / validation / test.

=====================  ==========  ===================  =============================================
name                   dataset     speaker-independent  what it is
=====================  ==========  ===================  =============================================
``ravdess-6fold``      ravdess     yes                  EmoBox's six actor folds (4 test actors each)
``ravdess-actor-split`` ravdess    yes                  one fixed split: test actors 21-24
``ravdess-random``     ravdess     **no (leaky)**       stratified 80/20 clip split, seed 0
``fer2013-official``   fer2013     n/a (no speakers)    Training / PublicTest / PrivateTest
=====================  ==========  ===================  =============================================

Validation data always comes from the training side, never from test speakers: in
``ravdess-6fold`` fold *k* validates (early stopping, model selection) on the test actors of fold
*k+1* (fold 6 on fold 1's), so every fold trains on 16 actors, validates on 4, tests on 4.
``ravdess-actor-split`` trains on actors 01-16, validates on 17-20 and tests on 21-24 (two men,
two women, 240 clips). ``ravdess-random`` lets the same actor appear in train and test; it is
there only to compare with published random-split numbers and is labelled leaky wherever it is
reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from emofuse.errors import EmofuseError

if TYPE_CHECKING:
    import numpy as np

    from emofuse.data._base import Dataset

# EmoBox (Ma et al., 2024), RAVDESS speaker-independent folds: fold -> test actors.
EMOBOX_RAVDESS_FOLDS: dict[int, tuple[int, ...]] = {
    1: (1, 11, 20, 21),
    2: (4, 10, 12, 14),
    3: (8, 9, 19, 23),
    4: (3, 5, 7, 24),
    5: (2, 15, 16, 18),
    6: (6, 13, 17, 22),
}
ACTOR_SPLIT_TEST = (21, 22, 23, 24)
ACTOR_SPLIT_VAL = (17, 18, 19, 20)
RANDOM_TEST_FRACTION = 0.2
RANDOM_VAL_FRACTION = 0.1


class ProtocolError(EmofuseError):
    """A protocol cannot be applied to a dataset, or a split broke its own rules."""


@dataclass(frozen=True)
class Fold:
    """One train / validation / test cut, as sample positions into the dataset."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str
    speaker_independent: bool
    leaky: bool
    description: str
    _make: Callable[[Dataset, int], list[Fold]]
    # Known without the data, so work can be planned (and split across processes) fold by fold.
    fold_names: tuple[str, ...] = ("official",)

    def folds(self, dataset: Dataset, *, seed: int = 0) -> list[Fold]:
        """The folds of this protocol on ``dataset``; speaker-independence is checked, not assumed."""
        if dataset.name != self.dataset:
            raise ProtocolError(f"protocol {self.name} is for {self.dataset}, not {dataset.name}")
        folds = self._make(dataset, seed)
        if tuple(f.name for f in folds) != self.fold_names:
            raise ProtocolError(f"{self.name} made folds {[f.name for f in folds]}, not its {list(self.fold_names)}")
        for fold in folds:
            for part in ("train", "val", "test"):
                if len(getattr(fold, part)) == 0:
                    raise ProtocolError(f"{self.name} {fold.name}: the {part} set is empty on this data")
            if self.speaker_independent:
                check_speaker_independent(dataset, fold)
        return folds


def check_speaker_independent(dataset: Dataset, fold: Fold) -> None:
    """Raise :class:`ProtocolError` if any speaker appears in two of train / val / test."""
    sets = {part: {dataset.samples[i].speaker for i in getattr(fold, part)} for part in ("train", "val", "test")}
    for part, speakers in sets.items():
        if None in speakers:
            raise ProtocolError(f"{fold.name}: {part} has samples without a speaker; cannot split by speaker")
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = sets[a] & sets[b]
        if shared:
            raise ProtocolError(f"{fold.name}: speaker(s) {', '.join(sorted(map(str, shared)))} in both {a} and {b}")


def _actor_of(dataset: Dataset) -> np.ndarray:
    import numpy as np

    return np.array([int(s.speaker) if s.speaker is not None else -1 for s in dataset.samples])


def _actor_fold(name: str, actors: np.ndarray, test: tuple[int, ...], val: tuple[int, ...]) -> Fold:
    import numpy as np

    is_test = np.isin(actors, test)
    is_val = np.isin(actors, val)
    return Fold(name=name, train=np.flatnonzero(~is_test & ~is_val), val=np.flatnonzero(is_val),
                test=np.flatnonzero(is_test))


def _ravdess_6fold(dataset: Dataset, seed: int) -> list[Fold]:
    del seed  # the folds are fixed by EmoBox
    actors = _actor_of(dataset)
    n = len(EMOBOX_RAVDESS_FOLDS)
    return [
        _actor_fold(f"fold{k}", actors, EMOBOX_RAVDESS_FOLDS[k], EMOBOX_RAVDESS_FOLDS[k % n + 1])
        for k in sorted(EMOBOX_RAVDESS_FOLDS)
    ]


def _ravdess_actor_split(dataset: Dataset, seed: int) -> list[Fold]:
    del seed
    return [_actor_fold("actor-split", _actor_of(dataset), ACTOR_SPLIT_TEST, ACTOR_SPLIT_VAL)]


def _stratified_random(dataset: Dataset, seed: int) -> list[Fold]:
    import numpy as np
    from sklearn.model_selection import train_test_split

    y = dataset.label_indices()
    positions = np.arange(len(y))
    train_val, test = train_test_split(positions, test_size=RANDOM_TEST_FRACTION, stratify=y, random_state=seed)
    train, val = train_test_split(train_val, test_size=RANDOM_VAL_FRACTION / (1 - RANDOM_TEST_FRACTION),
                                  stratify=y[train_val], random_state=seed)
    return [Fold(name="random", train=np.sort(train), val=np.sort(val), test=np.sort(test))]


def _fer2013_official(dataset: Dataset, seed: int) -> list[Fold]:
    import numpy as np

    del seed
    splits = np.array([s.split for s in dataset.samples], dtype=object)
    missing = [u for u in ("Training", "PublicTest", "PrivateTest") if not (splits == u).any()]
    if missing:
        raise ProtocolError(f"fer2013-official needs the official Usage split; no {', '.join(missing)} samples "
                            "(an image-folder copy without Training_/PublicTest_/PrivateTest_ prefixes "
                            "cannot tell the two test halves apart)")
    return [Fold(name="official", train=np.flatnonzero(splits == "Training"),
                 val=np.flatnonzero(splits == "PublicTest"), test=np.flatnonzero(splits == "PrivateTest"))]


def _official_splits(train: str, val: str, test: str) -> Callable[[Dataset, int], list[Fold]]:
    def make(dataset: Dataset, seed: int) -> list[Fold]:
        import numpy as np

        del seed
        splits = np.array([s.split for s in dataset.samples], dtype=object)
        missing = [u for u in (train, val, test) if not (splits == u).any()]
        if missing:
            raise ProtocolError(f"{dataset.name} has no {', '.join(missing)} split here: the official protocol "
                                "needs all three files")
        return [Fold(name="official", train=np.flatnonzero(splits == train), val=np.flatnonzero(splits == val),
                     test=np.flatnonzero(splits == test))]

    return make


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("ravdess-6fold", "ravdess", True, False,
                 "EmoBox speaker-independent 6 folds; validate on the next fold's actors", _ravdess_6fold,
                 tuple(f"fold{k}" for k in sorted(EMOBOX_RAVDESS_FOLDS))),
        Protocol("ravdess-actor-split", "ravdess", True, False,
                 "train actors 01-16, validate 17-20, test 21-24", _ravdess_actor_split, ("actor-split",)),
        Protocol("ravdess-random", "ravdess", False, True,
                 "stratified 80/20 clip split (seed 0), speaker-leaky: for comparison only", _stratified_random,
                 ("random",)),
        Protocol("fer2013-official", "fer2013", False, False,
                 "train Training, validate PublicTest, test PrivateTest", _fer2013_official),
        Protocol("meld-official", "meld", False, False,
                 "MELD's official split: train, validate dev, test test", _official_splits("train", "dev", "test")),
        Protocol("carer-official", "carer", False, False,
                 "CARER's 16k/2k/2k split: train, validate val, test test", _official_splits("train", "val", "test")),
    )
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ProtocolError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
