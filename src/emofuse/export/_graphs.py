"""The torch modules ONNX graphs are traced from: a model's tensor input in, probabilities out.

Each wraps a loaded registry model and computes exactly what its ``predict_proba`` computes after
preprocessing (softmax, test-time augmentation, column alignment included), so the exported graph
and the torch model can be compared number for number. Three rewrites keep the time axis dynamic
under ``torch.export`` without changing a single result:

* 1-D pooling (``max_pool1d``, ``avg_pool1d``) specialises the time axis to the example's length
  in torch 2.13; max pooling as 2-D over a ``(1, k)`` window does not, and the ceil-mode average
  is written out as pad, reshape and a mean over each window's real frames.
* A packed (variable-length) bidirectional RNN has no export path. :class:`BiRNNLayer` runs each
  direction over the padded batch instead: forward over the clips as they are (valid frames first),
  backward over the clips shifted right so each clip's last valid frame sits at the end. Both
  directions then start from a zero state on the clip's own frames, as packing makes them.
* A unidirectional ``nn.GRU``/``nn.LSTM`` is unrolled by the exporter (fixed length); a
  bidirectional one maps to ONNX's GRU/LSTM operator, so both directions run in one bidirectional
  module and the unused half of each pass is dropped (twice the RNN work; see docs/onnx.md).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _const(array: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32))


class ColumnMap(nn.Module):
    """Probabilities in a model's own column order -> the label set's order, by a 0/1 matrix (the
    matrix :func:`emofuse.labels.alignment_matrix` builds, or a scatter into ``classes_``)."""

    matrix: torch.Tensor

    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("matrix", _const(matrix))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        return probs @ self.matrix


class LogRegHead(nn.Module):
    """:class:`emofuse.models.linear.StandardisedLogReg` as torch ops: standardise, linear, softmax,
    then scatter into the label set (a class never seen in training keeps probability 0)."""

    mean: torch.Tensor
    scale: torch.Tensor
    coef: torch.Tensor
    intercept: torch.Tensor

    def __init__(self, head: Any, n_labels: int) -> None:
        super().__init__()
        self.register_buffer("mean", _const(head.mean_))
        self.register_buffer("scale", _const(head.scale_))
        self.register_buffer("coef", _const(np.asarray(head.coef_).T))  # (features, classes or 1)
        self.register_buffer("intercept", _const(head.intercept_))
        self.binary = np.asarray(head.coef_).shape[0] == 1  # scikit-learn's one-column binary form
        scatter = np.zeros((len(head.classes_) if not self.binary else 2, n_labels))
        scatter[np.arange(scatter.shape[0]), np.asarray(head.classes_, dtype=np.int64)] = 1.0
        self.columns = ColumnMap(scatter)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (batch, features) -> (batch, labels)
        logits = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        if self.binary:
            logits = torch.cat([-logits, logits], dim=1) / 2
        return self.columns(torch.softmax(logits, dim=1))


# --- voice ---------------------------------------------------------------------------------------


class _MaxPool1dAs2d(nn.Module):
    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, channels, frames)
        return F.max_pool2d(x.unsqueeze(2), (1, self.kernel)).squeeze(2)


def _avg_pool1d_ceil(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """``avg_pool1d(x, kernel, ceil_mode=True)`` for (batch, channels, frames), written out: the
    pooling ops themselves (1-D and 2-D) fix the frame count under export when ``ceil_mode`` is on."""
    frames = x.shape[-1]
    steps = (frames + kernel - 1) // kernel
    windows = F.pad(x, (0, steps * kernel - frames)).reshape(x.shape[0], x.shape[1], steps, kernel)
    # the last window counts only the frames it covers, as ceil_mode does
    count = torch.clamp(frames - torch.arange(steps, device=x.device) * kernel, max=kernel).to(x.dtype)
    return windows.sum(dim=-1) / count


def _gather_frames(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``out[b, t] = x[b, index[b, t]]`` for x (batch, frames, channels)."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class BiRNNLayer(nn.Module):
    """Layer ``layer`` of a bidirectional ``nn.GRU``/``nn.LSTM`` (batch first), run as if packed."""

    def __init__(self, rnn: nn.RNNBase, layer: int) -> None:
        super().__init__()
        size_in = rnn.input_size if layer == 0 else 2 * rnn.hidden_size
        self.hidden = rnn.hidden_size
        rnn_cls: Any = type(rnn)  # nn.GRU or nn.LSTM
        self.rnn = rnn_cls(size_in, rnn.hidden_size, batch_first=True, bidirectional=True)
        own = dict(rnn.named_parameters())
        with torch.no_grad():
            for name, param in self.rnn.named_parameters():  # weight_ih_l0[_reverse] <- weight_ih_l{layer}[_reverse]
                param.copy_(own[name.replace("_l0", f"_l{layer}")])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (batch, steps, features), valid steps first -> (batch, steps, 2 * hidden); rows past a
        clip's length hold numbers that mean nothing (callers mask them, as after unpacking)."""
        steps = x.shape[1]
        t = torch.arange(steps, device=x.device)[None, :]
        shift = (steps - lengths)[:, None]  # (batch, 1): padding steps of each clip
        # (t - shift) mod steps, written with where: remainder by a symbolic size does not export
        to_right = torch.where(t < shift, t - shift + steps, t - shift)
        back = torch.where(t + shift >= steps, t + shift - steps, t + shift)
        right = _gather_frames(x, to_right)  # each clip now ends at the last step
        forward = self.rnn(x)[0][..., : self.hidden]
        backward = _gather_frames(self.rnn(right)[0][..., self.hidden :], back)
        return torch.cat([forward, backward], dim=-1)


class RecurrentVoiceGraph(nn.Module):
    """:class:`emofuse.models.voice_nets.RecurrentVoiceNet` without packing."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net
        self.layers = nn.ModuleList(BiRNNLayer(net.rnn, i) for i in range(net.rnn.num_layers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from emofuse.models.voice_nets import frame_mask, mean_max_pool

        net = self.net
        x, _ = net.normalise(x, lengths)
        if net.subsample > 1:
            x = _avg_pool1d_ceil(x, net.subsample)  # (batch, features, frames / subsample)
            lengths = torch.div(lengths + net.subsample - 1, net.subsample, rounding_mode="floor")
        mask = frame_mask(lengths, x.shape[-1], x.shape[0], x.device)
        h = x.transpose(1, 2)  # (batch, steps, features)
        for layer in self.layers:
            h = layer(h, lengths)
        return torch.softmax(net.head(mean_max_pool(h, mask)), dim=1)


class VoiceNetGraph(nn.Module):
    """A CNN voice net as it is (1-D max pools swapped for their 2-D twins), then softmax."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        net = copy.deepcopy(net)
        for parent in net.modules():
            for name, child in parent.named_children():
                if isinstance(child, nn.MaxPool1d):
                    kernel = child.kernel_size if isinstance(child.kernel_size, int) else child.kernel_size[0]
                    if child.stride not in (kernel, (kernel,)) or child.padding not in (0, (0,)) or child.ceil_mode:
                        raise NotImplementedError("only max_pool1d(k) with stride k is rewritten")
                    setattr(parent, name, _MaxPool1dAs2d(kernel))
        self.net = net

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x, lengths), dim=1)


def voice_net_graph(net: Any) -> nn.Module:
    from emofuse.models.voice_nets import RecurrentVoiceNet

    return RecurrentVoiceGraph(net) if isinstance(net, RecurrentVoiceNet) else VoiceNetGraph(net)


class StatsLogRegGraph(nn.Module):
    """A logistic regression on a feature vector computed in Python (``voice_logreg``)."""

    def __init__(self, head: Any, n_labels: int) -> None:
        super().__init__()
        self.head = LogRegHead(head, n_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


class WhisperGraph(nn.Module):
    """Whisper encoder(s) over a log-mel batch, each chosen layer's states mean(+std) pooled over a
    clip's real frames, side by side, then the logistic-regression head (``voice_whisper*``)."""

    def __init__(self, encoders: Sequence[nn.Module], layers: str | Sequence[int], pooling: str, head: Any,
                 n_labels: int) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)
        self.layers = None if isinstance(layers, str) else [int(i) for i in layers]
        self.pooling = pooling
        self.head = LogRegHead(head, n_labels)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # mel (batch, n_mels, frames); the encoder's stride-2 conv halves frames, rounding up
        frames = torch.div(lengths + 1, 2, rounding_mode="floor")
        parts = []
        for encoder in self.encoders:
            states = torch.stack(encoder(mel, lengths), dim=1)  # (batch, layers + 1, frames / 2, d)
            if self.layers is not None:
                states = states[:, [i % states.shape[1] for i in self.layers]]
            mask = (torch.arange(states.shape[2], device=mel.device)[None, :] < frames[:, None]).to(states.dtype)
            mask = mask[:, None, :, None]  # (batch, 1, frames / 2, 1)
            count = frames.to(states.dtype)[:, None, None]
            mean = (states * mask).sum(dim=2) / count  # (batch, layers, d)
            pooled = [mean]
            if self.pooling == "mean_std":
                centred = (states - mean.unsqueeze(2)) * mask
                pooled.append(torch.sqrt((centred * centred).sum(dim=2) / count))
            parts.append(torch.cat(pooled, dim=-1).flatten(1))  # (batch, layers * pooled d)
        return self.head(torch.cat(parts, dim=1))


# --- face ----------------------------------------------------------------------------------------


class FaceNetGraph(nn.Module):
    """48 × 48 uint8 face crops -> probabilities; with ``tta``, the mean over its views (ten crops, or flips)."""

    def __init__(self, net: Any, *, tta: bool | str) -> None:
        super().__init__()
        self.net = net
        self.tta = tta

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        from emofuse.models.face import tta_views

        x = faces.float().div(255).unsqueeze(1)  # (batch, 1, 48, 48)
        views = tta_views(x, self.net.crop, self.tta)
        return torch.stack([torch.softmax(self.net(v), dim=1) for v in views]).mean(dim=0)


class PixelLogRegGraph(nn.Module):
    """``face_logreg``: 48 × 48 uint8 crops, pixels / 255, the logistic-regression head."""

    def __init__(self, head: Any, n_labels: int) -> None:
        super().__init__()
        self.head = LogRegHead(head, n_labels)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.head(faces.flatten(1).float().div(255))


class AlignedSoftmaxGraph(nn.Module):
    """A net's logits in its own class order -> softmax -> the label set's columns (mini-Xception)."""

    def __init__(self, net: nn.Module, matrix: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.columns = ColumnMap(matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.columns(torch.softmax(self.net(x), dim=1))


# --- text ----------------------------------------------------------------------------------------


class TokenNetGraph(nn.Module):
    """A token-id net with ``forward(tokens, lengths)`` (fine-tuned encoder), then softmax."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(tokens, lengths), dim=1)


class BiGRUTextGraph(nn.Module):
    """``text_bigru``'s net without packing."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net
        self.gru = BiRNNLayer(net.gru, 0)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        net = self.net
        states = self.gru(net.embed(tokens), lengths)  # (batch, tokens, 2 * hidden)
        mask = (torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths[:, None]).unsqueeze(-1)
        mean = (states * mask).sum(1) / lengths[:, None].clamp(min=1)
        peak = states.masked_fill(~mask, -1e4).max(1).values
        return torch.softmax(net.out(torch.cat([mean, peak], dim=1)), dim=1)


class SentenceLogRegGraph(nn.Module):
    """``text_minilm``: the encoder's states mean-pooled over the attention mask, unit length, head."""

    def __init__(self, encoder: nn.Module, head: Any, n_labels: int, *, normalize: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.normalize = normalize
        self.head = LogRegHead(head, n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(states.dtype)  # (batch, tokens, 1)
        pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = F.normalize(pooled, dim=1)
        return self.head(pooled)
