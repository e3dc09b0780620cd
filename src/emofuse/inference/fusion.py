"""How the modalities' answers become one: the single place to swap in :mod:`emofuse.fusion`.

Until the fusion package lands this is the plain mean of the answering modalities' probabilities,
each first aligned to the shared label set :data:`~emofuse.labels.BASIC7` (calm folds into neutral,
see :mod:`emofuse.labels`). Modalities whose status is not ``ok`` take no part; with none left the
fused result says why (``absent`` when nothing was given, else the first modality's status).
"""

from __future__ import annotations

from collections.abc import Mapping

from emofuse.inference.results import ModalityResult
from emofuse.labels import BASIC7

FUSED_LABELS: tuple[str, ...] = BASIC7


def fuse(results: Mapping[str, ModalityResult]) -> ModalityResult:
    """The fused answer over every ``ok`` modality in ``results``: ``(len(BASIC7),)`` probabilities."""
    import numpy as np

    from emofuse.labels import align_probabilities

    present = {name: r for name, r in results.items() if r.ok}
    if not present:
        reasons = [r.status for r in results.values() if r.status not in ("absent", "unavailable")]
        return ModalityResult(status=reasons[0] if reasons else "absent",
                              detail="no modality gave an answer to fuse")
    aligned = [align_probabilities(np.asarray(r.probabilities), r.labels, FUSED_LABELS) for r in present.values()]
    mean = np.mean(aligned, axis=0)
    mean = mean / mean.sum()
    return ModalityResult(status="ok", labels=FUSED_LABELS, probabilities=tuple(float(p) for p in mean),
                          detail="mean of " + ", ".join(present))
