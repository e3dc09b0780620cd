"""The comparative study: one config, a grid of models × protocols × seeds, fusion, a report.

>>> config = load_study_config("configs/study_smoke.yaml")
>>> run_study(config, "runs/study-smoke")   # resumable; writes report.md and report.html
"""

from emofuse.study.cells import PlannedCell, StudyError
from emofuse.study.config import (
           FusionEntry,
           ModelEntry,
           PairedConfig,
           Reference,
           StudyConfig,
           load_study_config,
)
from emofuse.study.runner import StudyOutcome, plan_study, run_study

__all__ = ["FusionEntry", "ModelEntry", "PairedConfig", "PlannedCell", "Reference", "StudyConfig", "StudyError",
           "StudyOutcome", "load_study_config", "plan_study", "run_study"]
