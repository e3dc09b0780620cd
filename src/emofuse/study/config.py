"""The study config: one YAML file that names a grid of models × protocols × seeds, fusions of them,
the paired-by-emotion evaluation and the published numbers to set beside ours.

Strict like every emofuse config: an unknown key is an error, and so is an unknown model,
protocol, fusion member or reference protocol. An entry with ``enabled: false`` is kept out of the
run (its model need not be in the registry yet) and listed in the report as not run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emofuse.errors import ConfigError, EmofuseError, checked_options

METRICS = ("wa", "ua", "f1")
DEFAULT_PAIRED_STRATEGIES = ("fusion_mean", "fusion_weighted", "fusion_max_confidence", "fusion_product",
                             "fusion_stacking")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _str_list(value: Any, what: str) -> list[str]:
    _require(isinstance(value, list) and all(isinstance(v, str) for v in value), f"{what} must be a list of names")
    return list(value)


@dataclass(frozen=True)
class Reference:
    """A published number for one entry on one protocol: ``metric`` (wa = accuracy, ua, f1 = macro-F1)
    as a percentage, and where it comes from."""

    metric: str
    value: float
    source: str
    note: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str) -> Reference:
        ref = cls(**checked_options(cls, d, what=f"{where} reference"))
        _require(ref.metric in METRICS, f"{where}: reference metric must be one of {', '.join(METRICS)}")
        _require(isinstance(ref.value, int | float) and 0 <= ref.value <= 100,
                 f"{where}: reference value is a percentage in [0, 100]")
        return ref


def _references(d: Any, *, where: str) -> dict[str, list[Reference]]:
    if d is None:
        return {}
    _require(isinstance(d, Mapping), f"{where}: references map a protocol to a list of references")
    return {protocol: [Reference.from_dict(r, where=f"{where} {protocol}") for r in refs]
            for protocol, refs in d.items()}


@dataclass(frozen=True)
class ModelEntry:
    """One registry model with its parameters; a row of every protocol table it runs on."""

    name: str
    model: str
    protocols: list[str] | None = None  # default: the study's protocols
    params: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None  # default: the study's seeds
    folds: dict[str, list[str]] | None = None  # protocol -> run only these folds (reduced runs)
    limit_per_fold: int | None = None  # at most this many training samples per fold (reduced runs)
    inputs: str = "auto"  # "transcripts": a text model fed what Whisper hears in an audio dataset's clips
    enabled: bool = True
    description: str = ""
    references: dict[str, list[Reference]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelEntry:
        where = f"model entry {d.get('name', '?')!r}"
        options = checked_options(cls, d, what=where)
        options["references"] = _references(options.get("references"), where=where)
        return cls(**options)


@dataclass(frozen=True)
class FusionEntry:
    """A fusion classifier (``fusion_*`` in the registry) over model entries, on every protocol
    (and seed) they all run on, fitted per fold on the members' validation predictions."""

    name: str
    strategy: str
    members: list[str]
    protocols: list[str] | None = None  # default: every protocol all members run on
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    description: str = ""
    references: dict[str, list[Reference]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FusionEntry:
        where = f"fusion entry {d.get('name', '?')!r}"
        options = checked_options(cls, d, what=where)
        options["references"] = _references(options.get("references"), where=where)
        return cls(**options)


@dataclass(frozen=True)
class PairedConfig:
    """The paired-by-emotion voice + face evaluation (see :mod:`emofuse.study.paired`)."""

    voice: str
    face: str
    voice_protocol: str = "ravdess-6fold"
    face_protocol: str = "fer2013-official"
    strategies: list[str] = field(default_factory=lambda: list(DEFAULT_PAIRED_STRATEGIES))
    pairings: int = 20
    missing_face: float = 0.3  # share of test samples whose face is dropped (the missing-modality path)
    missing_voice: float = 0.1  # share whose voice is dropped (disjoint from the above)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PairedConfig:
        cfg = cls(**checked_options(cls, d, what="paired"))
        _require(cfg.pairings >= 1, "paired.pairings must be at least 1")
        _require(cfg.missing_face >= 0 and cfg.missing_voice >= 0 and cfg.missing_face + cfg.missing_voice < 1,
                 "paired.missing_face + paired.missing_voice must lie in [0, 1)")
        return cfg


@dataclass(frozen=True)
class StudyConfig:
    name: str
    data: dict[str, str]
    models: list[ModelEntry]
    description: str = ""
    protocols: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    fusions: list[FusionEntry] = field(default_factory=list)
    paired: PairedConfig | None = None
    reuse: list[str] = field(default_factory=list)  # folders of earlier runs the study may reuse when they match
    workers: int = 1
    notes: list[str] = field(default_factory=list)  # shown at the top of the report

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, data_overrides: Mapping[str, str] | None = None) -> StudyConfig:
        _require(isinstance(d, Mapping), "a study config is a mapping")
        options = checked_options(cls, d, what="study")
        for key in ("name", "data", "models"):
            _require(key in options, f"study config needs {key!r}")
        _require(isinstance(options["models"], list), "models must be a list of model entries")
        options["models"] = [ModelEntry.from_dict(m) for m in options["models"]]
        options["fusions"] = [FusionEntry.from_dict(f) for f in options.get("fusions") or []]
        if options.get("paired") is not None:
            options["paired"] = PairedConfig.from_dict(options["paired"])
        options["data"] = {**dict(options["data"]), **dict(data_overrides or {})}
        config = cls(**options)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- what runs --------------------------------------------------------------------------

    def model_entries(self) -> list[ModelEntry]:
        return [m for m in self.models if m.enabled]

    def fusion_entries(self) -> list[FusionEntry]:
        return [f for f in self.fusions if f.enabled]

    def protocols_of(self, entry: ModelEntry) -> list[str]:
        return list(entry.protocols if entry.protocols is not None else self.protocols)

    def seeds_of(self, entry: ModelEntry) -> list[int]:
        return list(entry.seeds if entry.seeds is not None else self.seeds)

    def fusion_protocols(self, entry: FusionEntry) -> list[str]:
        by_name = {m.name: m for m in self.models}
        shared = [p for p in self.protocols_of(by_name[entry.members[0]])
                  if all(p in self.protocols_of(by_name[m]) for m in entry.members)]
        return list(entry.protocols) if entry.protocols is not None else shared

    def fusion_seeds(self, entry: FusionEntry) -> list[int]:
        by_name = {m.name: m for m in self.models}
        first = self.seeds_of(by_name[entry.members[0]])
        return [s for s in first if all(s in self.seeds_of(by_name[m]) for m in entry.members)]

    def validate(self) -> None:
        """Every name resolves; every model's parameters are accepted by the registry."""
        from emofuse.data.protocols import PROTOCOLS
        from emofuse.models import MODELS, create_model

        _require(isinstance(self.name, str) and self.name.replace("_", "").replace("-", "").isalnum(),
                 "study name: letters, digits, - and _ only (it names the report)")
        _require(self.workers >= 1, "workers must be at least 1")
        _require(bool(self.seeds) and all(isinstance(s, int) for s in self.seeds), "seeds: a list of integers")
        names = [m.name for m in self.models] + [f.name for f in self.fusions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        _require(not duplicates, f"entry names must be unique; repeated: {', '.join(duplicates)}")
        _require(bool(self.model_entries()), "no enabled model entries")
        for protocol in self.protocols:
            _require(protocol in PROTOCOLS, f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
        for entry in self.model_entries():
            where = f"model entry {entry.name!r}"
            if entry.model not in MODELS:
                raise ConfigError(f"{where}: unknown model {entry.model!r}; known: {', '.join(MODELS)} "
                                  "(set enabled: false on entries whose model is not in the registry yet)")
            _require(MODELS[entry.model].modality != "fusion", f"{where}: fusion models go under fusions:")
            protocols = self.protocols_of(entry)
            _require(bool(protocols), f"{where}: no protocols (give protocols: or the study's protocols:)")
            for protocol in protocols:
                _require(protocol in PROTOCOLS, f"{where}: unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
                dataset = PROTOCOLS[protocol].dataset
                _require(dataset in self.data, f"{where}: protocol {protocol} needs data: {{{dataset}: PATH}}")
            self._check_references(where, entry.references, protocols)
            _require(entry.folds is None or (isinstance(entry.folds, Mapping) and set(entry.folds) <= set(protocols)),
                     f"{where}: folds maps protocols the entry runs on to fold names (e.g. ravdess-6fold: [fold1])")
            try:
                create_model(entry.model, **entry.params)
            except EmofuseError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        enabled_models = {m.name for m in self.model_entries()}
        all_models = {m.name for m in self.models}
        for fusion in self.fusion_entries():
            where = f"fusion entry {fusion.name!r}"
            _require(fusion.strategy in MODELS and MODELS[fusion.strategy].modality == "fusion",
                     f"{where}: strategy must be a fusion model of the registry "
                     f"({', '.join(n for n, s in MODELS.items() if s.modality == 'fusion')}), not {fusion.strategy!r}")
            members = _str_list(fusion.members, f"{where}: members")
            _require(len(members) >= 2 and len(set(members)) == len(members), f"{where}: two or more distinct members")
            for member in members:
                _require(member in all_models, f"{where}: member {member!r} is not a model entry")
                _require(member in enabled_models, f"{where}: member {member!r} is disabled (disable this fusion too)")
            protocols = self.fusion_protocols(fusion)
            _require(bool(protocols), f"{where}: its members share no protocol")
            by_name = {m.name: m for m in self.models}
            for protocol in protocols:
                for member in members:
                    _require(protocol in self.protocols_of(by_name[member]),
                             f"{where}: member {member!r} does not run on {protocol}")
            self._check_references(where, fusion.references, protocols)
            try:
                create_model(fusion.strategy, **fusion.params)
            except EmofuseError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        if self.paired is not None:
            self._validate_paired(self.paired)

    def _validate_paired(self, paired: PairedConfig) -> None:
        from emofuse.models import MODELS

        by_name = {m.name: m for m in self.model_entries()}
        for role, name, protocol in (("voice", paired.voice, paired.voice_protocol),
                                     ("face", paired.face, paired.face_protocol)):
            _require(name in by_name, f"paired.{role}: {name!r} is not an enabled model entry")
            _require(protocol in self.protocols_of(by_name[name]),
                     f"paired.{role}: entry {name!r} does not run on {protocol}")
        for strategy in paired.strategies:
            _require(strategy in MODELS and MODELS[strategy].modality == "fusion",
                     f"paired.strategies: {strategy!r} is not a fusion model of the registry")

    @staticmethod
    def _check_references(where: str, references: Mapping[str, Any], protocols: Sequence[str]) -> None:
        for protocol in references:
            _require(protocol in protocols, f"{where}: a reference for {protocol}, which the entry does not run on")


def load_study_config(path: str | Path, *, data_overrides: Mapping[str, str] | None = None) -> StudyConfig:
    """Read and validate a study config (YAML or JSON)."""
    import yaml

    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        return StudyConfig.from_dict(loaded, data_overrides=data_overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TypeError as exc:  # a list where a mapping belongs, and the like
        raise ConfigError(f"{path}: malformed study config ({exc})") from None
