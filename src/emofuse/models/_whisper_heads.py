"""The torch heads of ``voice_whisper_attn`` (:mod:`emofuse.models.voice_whisper_attn` says what each does)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from emofuse.errors import ConfigError

HEADS = ("stats", "projected")


def _masked_softmax(scores: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Softmax over frames (dim 1) of ``scores`` (batch, frames, k), padded frames excluded."""
    scores = scores.float()
    if lengths is not None:
        mask = torch.arange(scores.shape[1], device=scores.device)[None, :] < lengths[:, None]
        scores = scores.masked_fill(~mask[..., None], float("-inf"))
    return torch.softmax(scores, dim=1)


class AttentiveStatsHead(nn.Module):
    """Attentive statistics pooling: attention-weighted mean and std of every standardised state, then
    a linear layer. The attention starts uniform (its last layer is zero), so at the first step the
    model is the mean+std pooled linear model, and learns which frames to weigh up."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    pooled_mean: torch.Tensor
    pooled_std: torch.Tensor

    def __init__(self, total: int, n_classes: int, *, hidden: int, dropout: float) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(total))
        self.register_buffer("feature_std", torch.ones(total))
        self.register_buffer("pooled_mean", torch.zeros(2 * total))
        self.register_buffer("pooled_std", torch.ones(2 * total))
        last = nn.Linear(hidden, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.attention = nn.Sequential(nn.Linear(total, hidden), nn.Tanh(), last)
        self.dropout = nn.Dropout(dropout)
        self.classify = nn.Linear(2 * total, n_classes)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-5))

    @torch.no_grad()
    def fit_pooled_normalisation(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        """Standardise the pooled statistics as the training clips' (uniform, initial) pooling gives them:
        the linear layer then starts on the inputs a standardised logistic regression would see."""
        self.pooled_mean.zero_()
        self.pooled_std.fill_(1.0)
        stacked = torch.cat([self.pool(x, lengths) for x, lengths in batches])
        self.pooled_mean.copy_(stacked.mean(dim=0))
        self.pooled_std.copy_(stacked.std(dim=0).clamp_min(1e-5))

    def pool(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        # x (batch, frames, features) -> (batch, 2 * features), standardised
        x = (x - self.feature_mean) / self.feature_std
        w = _masked_softmax(self.attention(x), lengths).to(x.dtype)  # (batch, frames, 1)
        mean = (w * x).sum(dim=1)
        std = ((w * (x - mean[:, None]) ** 2).sum(dim=1) + 1e-6).sqrt()
        return (torch.cat([mean, std], dim=-1) - self.pooled_mean) / self.pooled_std

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        return self.classify(self.dropout(self.pool(x, lengths)))


class ProjectedAttentionHead(nn.Module):
    """A learnt softmax mix of each Whisper model's layers, a projection per model, ``heads`` attention
    distributions over the frames, a linear layer."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, dims: Sequence[tuple[int, int]], n_classes: int, *, hidden: int, heads: int,
                 dropout: float) -> None:
        super().__init__()
        self.dims = [(int(n), int(d)) for n, d in dims]
        total = sum(n * d for n, d in self.dims)
        # Standardisation of every (layer, dimension), fitted on the training frames: Whisper's
        # states have a few dimensions hundreds of times larger than the rest.
        self.register_buffer("feature_mean", torch.zeros(total))
        self.register_buffer("feature_std", torch.ones(total))
        self.layer_logits = nn.ParameterList([nn.Parameter(torch.zeros(n)) for n, _ in self.dims])
        self.project = nn.ModuleList([nn.Linear(d, hidden) for _, d in self.dims])
        width = hidden * len(self.dims)
        self.dropout = nn.Dropout(dropout)
        self.attention = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, heads))
        self.classify = nn.Linear(heads * width, n_classes)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-5))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        # x (batch, frames, sum of n_states * d): every model's layers side by side, frame by frame
        batch, frames, _ = x.shape
        x = (x - self.feature_mean) / self.feature_std
        parts, offset = [], 0
        for (n, d), logits, project in zip(self.dims, self.layer_logits, self.project, strict=True):
            states = x[..., offset : offset + n * d].reshape(batch, frames, n, d)
            offset += n * d
            mixed = (states * torch.softmax(logits, dim=0)[:, None]).sum(dim=2)  # (batch, frames, d)
            parts.append(project(mixed))
        h = self.dropout(torch.nn.functional.gelu(torch.cat(parts, dim=-1)))  # (batch, frames, width)
        weights = _masked_softmax(self.attention(h), lengths).to(h.dtype)  # (batch, frames, heads)
        pooled = torch.einsum("bfh,bfw->bhw", weights, h).flatten(1)  # (batch, heads * width)
        return self.classify(self.dropout(pooled))


def build_head(dims: Sequence[tuple[int, int]], n_classes: int, *, kind: str = "stats", hidden: int = 128,
               heads: int = 4, dropout: float = 0.3) -> AttentiveStatsHead | ProjectedAttentionHead:
    """The ``kind`` head for Whisper models with ``dims`` = ``[(n_states, d_model), ...]``."""
    if kind == "stats":
        return AttentiveStatsHead(sum(n * d for n, d in dims), n_classes, hidden=hidden, dropout=dropout)
    if kind == "projected":
        return ProjectedAttentionHead(dims, n_classes, hidden=hidden, heads=heads, dropout=dropout)
    raise ConfigError(f"head must be one of {', '.join(HEADS)}, not {kind!r}")
