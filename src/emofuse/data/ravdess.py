"""RAVDESS: the Ryerson Audio-Visual Database of Emotional Speech and Song.

Every file name is seven two-digit codes, e.g. ``03-01-06-01-02-01-12.wav``::

    modality - vocal channel - emotion - intensity - statement - repetition - actor
    03 audio   01 speech       06 fearful 01 normal  02 "Dogs…"  01 first     12 (even: female)

The official audio archive (``Audio_Speech_Actors_01-24.zip``, Zenodo record 1188976) unpacks to
``Actor_01/ … Actor_24/`` of 48 kHz WAV. The loader reads that layout, our 16 kHz FLAC copy, and
any folder under which such files sit (song files, vocal channel 02, are accepted too).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from emofuse._progress import track
from emofuse.data._base import Dataset, Sample
from emofuse.data._media import probe_audio
from emofuse.errors import BadFilesCollector, DataError
from emofuse.labels import RAVDESS8, RAVDESS_CODES

MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
# Song was recorded without disgust and surprise (RAVDESS paper, Table 1).
SONG_EMOTIONS = frozenset({"01", "02", "03", "04", "05", "06"})

AUDIO_SUFFIXES = (".wav", ".flac")
_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_DIR = re.compile(r"^Actor_(\d\d)$", re.IGNORECASE)


@dataclass(frozen=True)
class RavdessName:
    """The seven codes of a RAVDESS file name, decoded."""

    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        """RAVDESS actors with odd numbers are male, even numbers female."""
        return "male" if self.actor % 2 else "female"

    @property
    def speaker(self) -> str:
        return f"{self.actor:02d}"


def parse_ravdess_name(name: str) -> RavdessName:
    """Decode a RAVDESS file name (with or without extension or folders).

    Raises ValueError saying which code is wrong.
    """
    stem = Path(name).name.split(".")[0]
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(
            f"file name {Path(name).name!r} does not follow the RAVDESS pattern "
            "MM-VV-EE-II-SS-RR-AA (seven two-digit codes, e.g. 03-01-06-01-02-01-12.wav)"
        )
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    problems = []
    if modality not in MODALITIES:
        problems.append(f"modality {modality} (expected 01, 02 or 03)")
    if channel not in VOCAL_CHANNELS:
        problems.append(f"vocal channel {channel} (expected 01 speech or 02 song)")
    if emotion not in RAVDESS_CODES:
        problems.append(f"emotion {emotion} (expected 01..08)")
    if intensity not in INTENSITIES:
        problems.append(f"intensity {intensity} (expected 01 or 02)")
    elif emotion == "01" and intensity == "02":
        problems.append("intensity 02 with emotion 01 (RAVDESS has no strong neutral)")
    if channel == "02" and emotion in RAVDESS_CODES and emotion not in SONG_EMOTIONS:
        problems.append(f"emotion {emotion} in a song file (song has emotions 01..06 only)")
    if statement not in STATEMENTS:
        problems.append(f"statement {statement} (expected 01 or 02)")
    if repetition not in ("01", "02"):
        problems.append(f"repetition {repetition} (expected 01 or 02)")
    if not 1 <= int(actor) <= 24:
        problems.append(f"actor {actor} (expected 01..24)")
    if problems:
        raise ValueError(f"file name {Path(name).name!r} has invalid RAVDESS codes: {'; '.join(problems)}")
    return RavdessName(
        modality=MODALITIES[modality],
        vocal_channel=VOCAL_CHANNELS[channel],
        emotion=RAVDESS_CODES[emotion],
        intensity=INTENSITIES[intensity],
        statement=STATEMENTS[statement],
        repetition=int(repetition),
        actor=int(actor),
    )


def find_ravdess_files(root: str | Path) -> list[Path]:
    """Every .wav/.flac file under ``root`` (any depth), sorted for a stable sample order."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such file or folder")
    if not root.is_dir():
        raise DataError(root, "expected a folder holding Actor_XX/ folders (unzip the archive first, "
                        "or use `emofuse data download ravdess --from ARCHIVE --to DIR`)")
    files = [p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_ravdess(
    root: str | Path,
    *,
    skip_bad: bool = False,
    check_audio: bool = True,
    progress: bool = False,
) -> Dataset:
    """Load RAVDESS audio from ``root`` (official ``Actor_XX/*.wav`` layout or our FLAC copy).

    Each file name is decoded (:func:`parse_ravdess_name`); with ``check_audio`` each header is read
    too, so an empty, truncated or non-audio file is caught here. A bad file raises
    :class:`DataError`; with ``skip_bad`` it is listed in ``dataset.bad_files`` instead.
    Video-only files cannot hold audio and are reported as bad.
    """
    root = Path(root)
    files = find_ravdess_files(root)
    if not files:
        raise DataError(root, "no RAVDESS audio files (.wav or .flac) found under this folder")
    collector = BadFilesCollector(skip_bad=skip_bad)
    samples: list[Sample] = []
    for path in track(files, description="Reading RAVDESS", total=len(files), enabled=progress):
        try:
            codes = parse_ravdess_name(path.name)
        except ValueError as exc:
            collector.add(DataError(path, str(exc)))
            continue
        folder = _ACTOR_DIR.match(path.parent.name)
        if folder is not None and int(folder.group(1)) != codes.actor:
            collector.add(DataError(path, f"actor code {codes.actor:02d} in a folder named {path.parent.name}"))
            continue
        if codes.modality == "video-only":
            collector.add(DataError(path, "modality 02 (video-only) has no audio"))
            continue
        meta: dict[str, object] = {**asdict(codes), "gender": codes.gender}
        del meta["emotion"]
        if check_audio:
            try:
                info = probe_audio(path)
            except DataError as exc:
                collector.add(DataError(path, exc.problem))
                continue
            meta["sample_rate_hz"] = info.sample_rate_hz
            meta["duration_seconds"] = round(info.duration_seconds, 4)
        samples.append(Sample(path=str(path), label=codes.emotion, speaker=codes.speaker, meta=meta))
    return Dataset(
        name="ravdess",
        modality="audio",
        labels=RAVDESS8,
        samples=samples,
        root=root,
        bad_files=collector.bad,
    )
