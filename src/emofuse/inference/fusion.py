"""How the modalities' answers become one, through :func:`emofuse.fusion.fuse`.

The ``mean`` strategy over the answering modalities, in the shared label set
:data:`~emofuse.labels.BASIC7` (calm folds into neutral, see :mod:`emofuse.labels`); a class one
member lacks (MELD's text model has no calm, a CARER one no neutral) is decided by the members that
have it. Modalities whose status is not ``ok`` take no part; with none left the fused result says
why (``absent`` when nothing was given, else the first modality's status). No paired audio-visual
data exists to fit weights or temperatures for the shipped models, so none are applied.
"""

from __future__ import annotations

from collections.abc import Mapping

from emofuse.inference.results import ModalityResult
from emofuse.labels import BASIC7

FUSED_LABELS: tuple[str, ...] = BASIC7


def fuse_modalities(results: Mapping[str, ModalityResult]) -> ModalityResult:
    """The fused answer over every ``ok`` modality in ``results``: ``(len(BASIC7),)`` probabilities."""
    import numpy as np

    from emofuse.fusion import fuse as fuse_members

    present = {name: r for name, r in results.items() if r.ok}
    if not present:
        reasons = [r.status for r in results.values() if r.status not in ("absent", "unavailable")]
        return ModalityResult(status=reasons[0] if reasons else "absent",
                              detail="no modality gave an answer to fuse")
    fused = fuse_members({name: np.asarray(r.probabilities, dtype=np.float64) for name, r in present.items()},
                         {name: tuple(r.labels) for name, r in present.items()}, strategy="mean", target=FUSED_LABELS)
    probs = np.asarray(fused.probabilities, dtype=np.float64).reshape(-1)
    # Uncertain when every modality that answered is: one sure modality is enough to stand behind.
    return ModalityResult(status="ok", labels=FUSED_LABELS, probabilities=tuple(float(p) for p in probs),
                          detail="mean of " + ", ".join(present), uncertain=all(r.uncertain for r in present.values()))
