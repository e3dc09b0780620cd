"""Late-fusion arithmetic: pure functions over members' probabilities.

Shapes used throughout: ``n`` samples, ``M`` members, ``K`` classes of the fused label set.

* Each member's probabilities are first temperature-scaled in its *own* label set, then moved into
  the fused label set through the taxonomy (:func:`emofuse.labels.align_probabilities`: RAVDESS's
  calm folds into neutral, CARER's love into happy).
* A member that is missing for a sample (no face found, no speech, no transcript) is a row of NaN.
  Fusion uses, for every sample and every class, only the members present for that sample that
  have an opinion on that class (:func:`emofuse.labels.coverage`), and renormalises over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from emofuse.errors import EmofuseError
from emofuse.labels import align_probabilities, coverage

EPS = 1e-12  # floor for logarithms of probabilities (a logistic regression can output exact zeros)
STRATEGIES = ("mean", "weighted", "max_confidence", "product")
"""Strategies :func:`combine` computes from probabilities alone (stacking needs a fitted model)."""


class FusionError(EmofuseError):
    """Fusion inputs that do not fit together (shapes, label sets, member names, weights)."""


@dataclass(frozen=True)
class Aligned:
    """Members' probabilities in the fused label set, ready to combine.

    ``probs`` ``(M, n, K)`` (zero where a member is missing), ``present`` ``(n, M)``, ``covers``
    ``(M, K)``: True where a member's own label set feeds the class.
    """

    members: tuple[str, ...]
    labels: tuple[str, ...]
    probs: np.ndarray
    present: np.ndarray
    covers: np.ndarray


def present_rows(probs: np.ndarray) -> np.ndarray:
    """``(n,)`` True where a member's row holds probabilities, False where it is missing (NaN)."""
    return ~np.isnan(probs).any(axis=1)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row-wise; ``(n, k)`` -> ``(n, k)``. T > 1 softens, T < 1 sharpens.

    Give it present rows only; exact zeros stay (almost) zero.
    """
    if not temperature > 0:
        raise FusionError(f"temperature must be positive, not {temperature}")
    logits = np.log(np.clip(probs, EPS, None)) / temperature
    out = np.exp(logits - logits.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def member_nll(aligned: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """Mean negative log-likelihood of targets ``y`` under ``aligned`` ``(n, K)`` over rows in ``mask``."""
    return float(-np.log(np.clip(aligned[mask, y[mask]], EPS, None)).mean())


def fit_temperature(probs: np.ndarray, y: np.ndarray, *, source: Sequence[str], target: Sequence[str]) -> float:
    """The temperature that minimises the member's NLL of ``y`` (indices into ``target``).

    Fitted in the fused label set, on the rows where the member is present and its label set covers
    the true class (a text model without *neutral* cannot be scored on a neutral sample). A search
    over log T in [-3, 3] (T from 0.05 to 20), refined once around the best point; returns 1 when
    there is nothing to fit on.
    """
    y = np.asarray(y, dtype=np.int64)
    covered = coverage(source, target)
    mask = present_rows(probs) & covered[y]
    if mask.sum() < 2:
        return 1.0
    rows = probs[mask]
    y_rows = np.asarray(y[mask])
    ones = np.ones(len(rows), dtype=bool)

    def nll(log_t: float) -> float:
        return member_nll(align_probabilities(apply_temperature(rows, float(np.exp(log_t))), source, target),
                          y_rows, ones)

    grid = np.linspace(-3.0, 3.0, 61)
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = np.linspace(best - 0.1, best + 0.1, 21)
    return float(np.exp(fine[int(np.argmin([nll(t) for t in fine]))]))


def align_members(probabilities: Mapping[str, np.ndarray], labels: Mapping[str, Sequence[str]],
                  target: Sequence[str], *, members: Sequence[str] | None = None,
                  temperatures: Mapping[str, float] | None = None) -> Aligned:
    """Temperature-scale each member in its own label set, then align it into ``target``.

    ``members`` fixes the order (default: the mapping's); a member named there but absent from
    ``probabilities`` is missing for every sample.
    """
    names = tuple(members) if members is not None else tuple(probabilities)
    unknown = sorted(set(probabilities) - set(names))
    if unknown:
        raise FusionError(f"member(s) {', '.join(unknown)} not among the fused members {names}")
    sizes = {len(np.asarray(p)) for p in probabilities.values()}
    if len(sizes) > 1:
        raise FusionError(f"members disagree on the number of samples: {sorted(sizes)}")
    n = sizes.pop() if sizes else 0
    target = tuple(target)
    stacked = np.zeros((len(names), n, len(target)))
    present = np.zeros((n, len(names)), dtype=bool)
    covers = np.zeros((len(names), len(target)), dtype=bool)
    for m, name in enumerate(names):
        if name not in labels:
            raise FusionError(f"no label set given for member {name!r}")
        source = tuple(labels[name])
        covers[m] = coverage(source, target)
        if name not in probabilities:
            continue
        probs = np.asarray(probabilities[name], dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(source):
            raise FusionError(f"member {name!r}: probabilities of shape {probs.shape} do not match its "
                              f"{len(source)}-class label set")
        rows = present_rows(probs)
        kept = probs[rows]
        if temperatures is not None and name in temperatures and len(kept):
            kept = apply_temperature(kept, temperatures[name])
        stacked[m, rows] = align_probabilities(kept, source, target)
        present[:, m] = rows
    return Aligned(members=names, labels=target, probs=stacked, present=present, covers=covers)


def _renormalise(fused: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; a row with no mass (no member present) becomes uniform."""
    sums = fused.sum(axis=1, keepdims=True)
    uniform = np.full_like(fused, 1.0 / fused.shape[1]) if fused.shape[1] else fused
    return np.where(sums > 0, fused / np.where(sums > 0, sums, 1.0), uniform)


def combine(aligned: Aligned, strategy: str, *, weights: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Fuse aligned members into ``(n, K)`` probabilities whose rows sum to 1.

    * ``mean``: per class, the average over the present members that cover it;
    * ``weighted``: the same with member ``weights`` (renormalised over who is present);
    * ``product``: per class, the geometric mean, i.e. the average log-probability;
    * ``max_confidence``: the distribution of the present member most confident in its top class.

    ``weights`` (one per member, renormalised over who is present) weight the average of ``mean``,
    ``weighted`` and ``product``. A sample whose present members all have weight 0 (a fitted weighting
    that leans on a member missing here) is fused with equal weights over those present, never
    answered with a guess. A sample with no member present gets the uniform distribution.
    """
    m_count = len(aligned.members)
    if strategy == "weighted" and weights is None:
        raise FusionError("weighted fusion needs weights (one per member)")
    w = np.ones(m_count) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != m_count or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise FusionError(f"weights must be {m_count} non-negative numbers, not all zero; got {list(w)}")
    present = aligned.present.T.astype(np.float64)  # (M, n)
    weight = w[:, None] * present
    unweighted = (weight.sum(axis=0) <= 0) & (present.sum(axis=0) > 0)
    weight[:, unweighted] = present[:, unweighted]
    # (M, n, K): how much member m counts for sample i, class k.
    share = weight[:, :, None] * aligned.covers[:, None, :]
    total = share.sum(axis=0)  # (n, K)
    safe_total = np.where(total > 0, total, 1.0)
    if strategy in ("mean", "weighted"):
        fused = np.where(total > 0, (share * aligned.probs).sum(axis=0) / safe_total, 0.0)
    elif strategy == "product":
        log_p = np.log(np.clip(aligned.probs, EPS, None))
        fused = np.where(total > 0, np.exp((share * log_p).sum(axis=0) / safe_total), 0.0)
    elif strategy == "max_confidence":
        confidence = np.where(aligned.present.T, aligned.probs.max(axis=2), -1.0)  # (M, n)
        best = confidence.argmax(axis=0)  # (n,)
        fused = aligned.probs[best, np.arange(aligned.probs.shape[1])]
        anyone = np.asarray(aligned.present.any(axis=1))
        fused = np.where(anyone[:, None], fused, 0.0)
    else:
        raise FusionError(f"unknown fusion strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    return _renormalise(fused)
