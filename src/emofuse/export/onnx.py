"""Export a saved model to ONNX: one graph from the model's tensor input to its probabilities.

>>> result = export_onnx("voice", "voice.onnx")         # a shipped model, a saved model folder, or a run
>>> result.path, result.sidecar                        # voice.onnx and voice.onnx.json

What stays in Python is what the torch model does in numpy before its first tensor: decoding,
MFCC / log-mel / Whisper log-mel, face detection and alignment, tokenisation. The graph holds the
rest: normalisation, the network or encoder, pooling, the logistic-regression head, softmax,
ten-crop test-time augmentation, column alignment. The sidecar ``FILE.json`` holds the model's own
``model.json`` (labels, features, architecture) plus the graph's inputs, axes and opset, which is
all :class:`emofuse.export.runtime.OnnxModel` needs to rebuild the preprocessing.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emofuse._io import write_json
from emofuse.errors import EmofuseError
from emofuse.export.sidecar import build_sidecar, sidecar_path

OPSET = 18
TOLERANCE = 1e-4  # max abs difference of probabilities, exported vs torch, checked on every export


class ExportError(EmofuseError):
    """A model that cannot be exported, or an export that did not come out right."""


@dataclass(frozen=True)
class GraphInput:
    name: str
    example: Any  # a torch tensor the graph is traced with
    axes: dict[int, str]  # dynamic axes: index -> name ("batch", "frames", "tokens")
    dtype: str  # numpy dtype name the runtime feeds
    min_size: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GraphSpec:
    """What :func:`build_graph` returns: the module to trace, its inputs, and how the runtime feeds it."""

    module: Any
    inputs: list[GraphInput]
    kind: str  # the runtime's preprocessing: voice_frames, voice_stats, whisper, face_crops, face_fer, text_*


@dataclass(frozen=True)
class OnnxExport:
    path: Path
    sidecar: Path
    model: str
    kind: str
    max_abs_diff: float  # on the export's own check inputs


# --- which folder --------------------------------------------------------------------------------


def resolve_model_dir(source: str | Path, *, fold: str | None = None) -> Path:
    """``voice``/``face``/``text`` (the shipped models), a saved model folder (``model.json``), or a run
    directory from ``emofuse train`` (its ``folds/<fold>/model``; ``fold`` picks one when there are several)."""
    from emofuse.models.shipped import SHIPPED, shipped_model_dir

    path = Path(source)
    if str(source) in SHIPPED and not path.exists():
        folder = shipped_model_dir(str(source))
        if folder is None:
            raise ExportError(f"the shipped {source} model is not installed")
        return folder
    if (path / "model.json").is_file():
        return path
    folds = sorted(p.parent.parent.name for p in path.glob("folds/*/model/model.json"))
    if folds:
        if fold is None and len(folds) == 1:
            fold = folds[0]
        if fold is None:
            raise ExportError(f"{path} is a run with {len(folds)} fold models ({', '.join(folds)}): pick one with --fold")
        if fold not in folds:
            raise ExportError(f"{path}: no saved model for fold {fold!r}; folds: {', '.join(folds)}")
        return path / "folds" / fold / "model"
    if not path.exists():
        raise ExportError(f"{source}: no such file or folder (and not one of the shipped models: {', '.join(SHIPPED)})")
    raise ExportError(f"{source}: neither a saved model (model.json) nor a run directory (folds/*/model)")


# --- the graph of each model -------------------------------------------------------------------


def build_graph(model: Any) -> GraphSpec:
    """The torch module and example inputs for a loaded registry model (any but the fusion ones)."""
    import torch

    from emofuse.export import _graphs as g

    batch = 2
    n_labels = len(model.labels_)
    cls = type(model).__name__
    if cls == "TorchVoiceClassifier":
        from emofuse.models.voice import MIN_FRAMES

        frames = MIN_FRAMES + 37
        return GraphSpec(g.voice_net_graph(model.net_), [
            GraphInput("features", torch.randn(batch, model.features.n_features, frames), {0: "batch", 2: "frames"},
                       "float32", {"frames": MIN_FRAMES}),
            GraphInput("lengths", torch.tensor([frames, frames - 20]), {0: "batch"}, "int64"),
        ], "voice_frames")
    if cls == "VoiceLogReg":
        d = len(model.head_.mean_)
        return GraphSpec(g.StatsLogRegGraph(model.head_, n_labels),
                         [GraphInput("features", torch.randn(batch, d), {0: "batch"}, "float32")], "voice_stats")
    if cls == "VoiceWhisper":
        from emofuse.features.whisper import load_whisper_encoder

        if getattr(model, "mfcc_stats", False):
            raise ExportError(f"{model.name}: its MFCC statistics are computed in Python beside the encoder; "
                              "the graph would need them as a second input (not exported yet)")
        if getattr(model, "untrimmed_view", False):
            raise ExportError(f"{model.name}: its second head reads the untrimmed clip, a different input than "
                              "the first; one graph cannot take both yet (export a model without untrimmed_view)")
        if getattr(model, "tta", False):
            raise ExportError(f"{model.name}: test-time augmentation resamples each clip into speed copies in "
                              "Python before the encoder; the graph would score the clip alone (export without tta)")

        encoders = [load_whisper_encoder(m) for m in model.features.models]
        n_mels = encoders[0].info.n_mels
        if any(e.info.n_mels != n_mels for e in encoders):
            raise ExportError(f"{model.name}: its Whisper encoders read different log-mel sizes")
        frames = 151
        module = g.WhisperGraph([copy_module(e.module) for e in encoders], model.features.layers,
                                model.features.pooling, model.head_, n_labels)
        return GraphSpec(module, [
            GraphInput("mel", torch.randn(batch, n_mels, frames) * 0.5, {0: "batch", 2: "frames"}, "float32",
                       {"frames": 2}),
            GraphInput("lengths", torch.tensor([frames, frames - 40]), {0: "batch"}, "int64"),
        ], "whisper")
    if cls == "VoiceWhisperAttention":
        raise ExportError(f"{model.name}: its head reads strided float16 frames of every layer; the graph that "
                          "strides and rounds them like the feature cache is not written yet (export voice_whisper)")
    if cls == "TorchFaceClassifier":
        faces = torch.randint(0, 256, (batch, 48, 48), dtype=torch.uint8)
        return GraphSpec(g.FaceNetGraph(model.net_, tta=model.tta),
                         [GraphInput("faces", faces, {0: "batch"}, "uint8")], "face_crops")
    if cls == "FaceLogReg":
        faces = torch.randint(0, 256, (batch, 48, 48), dtype=torch.uint8)
        return GraphSpec(g.PixelLogRegGraph(model.head_, n_labels),
                         [GraphInput("faces", faces, {0: "batch"}, "uint8")], "face_crops")
    if cls == "FerMiniXception":
        from emofuse.labels import alignment_matrix
        from emofuse.models.face_peer_net import FER_CLASS_ORDER, INPUT_SIDE

        x = torch.rand(batch, 1, INPUT_SIDE, INPUT_SIDE) * 2 - 1
        return GraphSpec(g.AlignedSoftmaxGraph(model.net_, alignment_matrix(FER_CLASS_ORDER, model.labels_)),
                         [GraphInput("pixels", x, {0: "batch"}, "float32")], "face_fer")
    if cls == "TextBiGRU":
        tokens = torch.randint(1, len(model.vocab_), (batch, 12))
        return GraphSpec(g.BiGRUTextGraph(model.net_), [
            GraphInput("tokens", tokens, {0: "batch", 1: "tokens"}, "int64", {"tokens": 2}),
            GraphInput("lengths", torch.tensor([12, 5]), {0: "batch"}, "int64"),
        ], "text_tokens")
    if cls == "TextEncoderFineTuned":
        tokens = torch.randint(1000, 2000, (batch, 12))
        return GraphSpec(g.TokenNetGraph(model.net_), [
            GraphInput("tokens", tokens, {0: "batch", 1: "tokens"}, "int64", {"tokens": 2}),
            GraphInput("lengths", torch.tensor([12, 5]), {0: "batch"}, "int64"),
        ], "text_wordpieces")
    if cls == "TextEncoderLogReg":
        from emofuse.models.text import load_text_encoder

        _, encoder = load_text_encoder(model.encoder)
        ids = torch.randint(1000, 2000, (batch, 12))
        mask = torch.ones(batch, 12, dtype=torch.long)
        mask[1, 7:] = 0
        return GraphSpec(g.SentenceLogRegGraph(copy_module(encoder), model.head_, n_labels, normalize=True), [
            GraphInput("input_ids", ids, {0: "batch", 1: "tokens"}, "int64", {"tokens": 2}),
            GraphInput("attention_mask", mask, {0: "batch", 1: "tokens"}, "int64", {"tokens": 2}),
        ], "text_encoder")
    raise ExportError(f"{getattr(model, 'name', cls)}: {cls} has no ONNX export (fusion models combine other "
                      "models' probabilities; export their members instead)")


def copy_module(module: Any) -> Any:
    """A private copy, so tracing never touches the process-wide cached encoder."""
    import copy

    return copy.deepcopy(module).eval()


# --- export --------------------------------------------------------------------------------------


def export_onnx(source: str | Path, out: str | Path, *, fold: str | None = None, opset: int = OPSET,
                check: bool = True) -> OnnxExport:
    """Export the model at ``source`` (see :func:`resolve_model_dir`) to ``out`` and ``out.json``.

    With ``check``, the file is run in onnxruntime on the export's inputs at two batch sizes and
    two lengths, and an export whose probabilities differ from torch's by more than 1e-4 is an error.
    """
    from emofuse.models import load_model

    folder = resolve_model_dir(source, fold=fold)
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    model = load_model(folder)
    spec = build_graph(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _trace_to_file(spec, out, opset=opset)
    try:
        diff = check_export(spec, out) if check else float("nan")
    except BaseException:
        out.unlink(missing_ok=True)  # an export that failed its check is not left behind
        raise
    sidecar = sidecar_path(out)
    write_json(sidecar, build_sidecar(meta, spec, folder, opset=opset, max_abs_diff=diff, tolerance=TOLERANCE))
    return OnnxExport(path=out, sidecar=sidecar, model=str(meta["model"]), kind=spec.kind, max_abs_diff=diff)


def _trace_to_file(spec: GraphSpec, out: Path, *, opset: int) -> None:
    import warnings

    import torch

    dims: dict[str, Any] = {}
    dynamic_shapes: list[dict[int, Any]] = []  # positional, in the order of spec.inputs
    for inp in spec.inputs:
        shapes = {}
        for axis, axis_name in inp.axes.items():
            if axis_name not in dims:
                dims[axis_name] = torch.export.Dim(axis_name, min=inp.min_size.get(axis_name, 1))
            shapes[axis] = dims[axis_name]
        dynamic_shapes.append(shapes)
    import logging

    from emofuse._native import verbose

    module = spec.module.eval()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # renamed into place once complete
    # The dynamo exporter logs what it skips (torchvision's operators, absent here) at WARNING: not ours to show.
    exporter_log = logging.getLogger("torch.onnx")
    quiet_level = exporter_log.level if verbose() else logging.ERROR
    try:
        with warnings.catch_warnings(), _log_level(exporter_log, quiet_level):
            warnings.simplefilter("ignore")  # the exporters' Future/TracerWarnings say nothing about this model
            if uses_rnn(module):
                _torchscript_export(module, spec, tmp, opset=opset)
            else:
                program = torch.onnx.export(module, tuple(i.example for i in spec.inputs), dynamo=True,
                                            opset_version=opset, input_names=[i.name for i in spec.inputs],
                                            output_names=["probabilities"], dynamic_shapes=tuple(dynamic_shapes),
                                            verbose=False, optimize=True)
                if program is None:  # pragma: no cover - dynamo=True always returns a program
                    raise ExportError("torch.onnx.export returned nothing")
                program.save(str(tmp))
        import onnx

        _check_axes(onnx.load(str(tmp)), spec)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def _log_level(logger: Any, level: int) -> Any:
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


def uses_rnn(module: Any) -> bool:
    from torch import nn

    return any(isinstance(m, nn.RNNBase) for m in module.modules())


def _torchscript_export(module: Any, spec: GraphSpec, path: Path, *, opset: int) -> None:
    """GRU/LSTM graphs go through the TorchScript exporter: with torch 2.13 the dynamo exporter fails
    to decompose ``aten.gru.input`` for some sizes (a shape mismatch inside its own decomposition)."""
    import torch

    with torch.no_grad():
        torch.onnx.export(module, tuple(i.example for i in spec.inputs), str(path), dynamo=False, opset_version=opset,
                          input_names=[i.name for i in spec.inputs], output_names=["probabilities"],
                          dynamic_axes={**{i.name: dict(i.axes) for i in spec.inputs}, "probabilities": {0: "batch"}})


def _check_axes(proto: Any, spec: GraphSpec) -> None:
    """The exporter may fix an axis it was told is dynamic (it retries without the constraint when an
    op specialises it); a file that only takes the example's length would be a silent trap."""
    graph_inputs = {i.name: i for i in proto.graph.input}
    for inp in spec.inputs:
        dims = graph_inputs[inp.name].type.tensor_type.shape.dim
        for axis, axis_name in inp.axes.items():
            if not dims[axis].dim_param:
                raise ExportError(f"the exporter fixed the {axis_name} axis of input {inp.name!r} to "
                                  f"{dims[axis].dim_value}: some op in the model is not shape-generic")


def check_export(spec: GraphSpec, path: Path) -> float:
    """Max abs difference of probabilities, onnxruntime vs torch, on variants of the example inputs
    (batch 1 and 3; the time axis cut and stretched). Raises :class:`ExportError` past 1e-4."""
    import torch

    from emofuse.export.session import new_session

    session = new_session(path, threads=1)
    worst = 0.0
    for inputs in _variants(spec):
        with torch.no_grad():
            expected = spec.module(*inputs).double().numpy()
        got = session.run(None, {i.name: x.numpy() for i, x in zip(spec.inputs, inputs, strict=True)})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    if worst > TOLERANCE:
        raise ExportError(f"{path}: onnxruntime and torch disagree by {worst:.2e} (tolerance {TOLERANCE:g})")
    return worst


def _variants(spec: GraphSpec) -> list[list[Any]]:
    """The example inputs at batch 1 and 3, with any time axis shortened and lengthened."""
    import torch

    out = []
    for batch, stretch in ((1, 0.8), (3, 1.5)):
        generator = torch.Generator().manual_seed(batch)
        variant = []
        size: dict[str, int] = {}
        for inp in spec.inputs:
            x = inp.example
            shape = list(x.shape)
            for axis, axis_name in inp.axes.items():
                if axis_name == "batch":
                    shape[axis] = batch
                else:
                    size.setdefault(axis_name, max(int(shape[axis] * stretch), inp.min_size.get(axis_name, 1)))
                    shape[axis] = size[axis_name]
            variant.append(_like(inp, x, shape, size, generator))
        out.append(variant)
    return out


def _like(inp: GraphInput, x: Any, shape: list[int], size: dict[str, int], generator: Any) -> Any:
    import torch

    if inp.name == "lengths":  # the first clip full length, the others shorter: padding in every batch
        full = next(iter(size.values())) if size else 1
        lengths = torch.randint(max(1, full // 3), full + 1, (shape[0],), generator=generator)
        lengths[0] = full
        return lengths
    if inp.name == "attention_mask":
        mask = torch.ones(shape, dtype=x.dtype)
        for row in range(1, shape[0]):
            mask[row, max(1, shape[1] - 3 * row):] = 0
        return mask
    if x.dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    if x.dtype == torch.int64:
        low, high = int(x.min()), int(x.max()) + 1
        return torch.randint(low, high, shape, generator=generator)
    return torch.randn(shape, generator=generator) * float(x.std())
