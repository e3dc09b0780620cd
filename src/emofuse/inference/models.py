"""What the predictor says about each component it loaded (``GET /v1/models``, ``emofuse predict``).
Where the shipped models live, and their cards, is :mod:`emofuse.models.shipped`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /v1/models`` and ``emofuse predict`` say about one loaded component."""

    modality: str  # "voice", "face", "words", "transcriber"
    name: str  # registry name or component name
    version: str
    labels: tuple[str, ...]
    source: str  # "shipped", a directory, or "injected"
    card: dict[str, Any] = field(default_factory=dict)
    card_markdown: str = ""
