"""Many files at once: folders walked recursively, audio decoded and classified in batches.

One bad file becomes a :class:`FileResult` with status ``unreadable`` and the reason; it never
stops the others. Results come back in input order (folders in sorted path order).
"""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from pathlib import Path

from emofuse.errors import ConfigError, DataError
from emofuse.inference.fusion import fuse_modalities
from emofuse.inference.media import media_kind
from emofuse.inference.predictor import Predictor
from emofuse.inference.results import FileResult, Prediction, status_only


def expand_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, every file under each folder (recursive, sorted, hidden files skipped), and the
    files a glob pattern matches (``clips/*.wav``, ``data/**/*.flac``; sorted) when no file has that name.

    A path that does not exist (or a pattern that matches nothing) is kept: :func:`predict_files` reports it.
    """
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(_walk(path))
        elif not path.exists() and glob.has_magic(str(raw)):
            matches = sorted(Path(m) for m in glob.glob(str(raw), recursive=True))
            for match in matches or [path]:
                out.extend(_walk(match) if match.is_dir() else [match])
        else:
            out.append(path)
    return out


def _walk(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def predict_files(predictor: Predictor, paths: Sequence[str | Path], *, progress: bool = False,
                  transcribe: bool = True, batch_size: int = 32, adapt_speaker: bool = False) -> Iterator[FileResult]:
    """A :class:`FileResult` for every file in ``paths`` (folders expanded), in order.

    Audio files are decoded ``batch_size`` at a time and their voice classified in one batch per
    group; images, videos and text files are handled one by one. With ``adapt_speaker`` the audio
    files are taken as one speaker's clips, in order, and the voice model adapts to that speaker
    as it hears them (:meth:`Predictor.voice_results`).
    """
    from emofuse._progress import track

    files = expand_paths(paths)
    speaker = predictor.new_speaker() if adapt_speaker else None
    if adapt_speaker and speaker is None:
        raise ConfigError("the voice model has no speaker-adapted head: --adapt-speaker needs one "
                          "(the shipped voice model has it; see VoiceWhisper.fit_speaker_head)")
    pending: list[tuple[Path, object]] = []  # audio waiting for its batch: (path, waveform or error)

    def flush() -> Iterator[FileResult]:
        decoded = [(p, y) for p, y in pending if not isinstance(y, DataError)]
        voice = predictor.voice_results([y for _, y in decoded], speaker=speaker) if decoded else []  # type: ignore[misc]
        by_path = dict(zip([p for p, _ in decoded], voice, strict=True))
        for path, y in pending:
            if isinstance(y, DataError):
                yield FileResult(path=str(path), kind="audio", status="unreadable", problem=y.problem)
                continue
            words = predictor.transcribe(y)[0] if transcribe else status_only("unavailable", "speech-to-text off")  # type: ignore[arg-type]
            modalities = {"voice": by_path[path], "face": status_only("absent"), "words": words}
            yield FileResult(path=str(path), kind="audio", status="ok",
                             prediction=Prediction(modalities=modalities, fused=fuse_modalities(modalities)))
        pending.clear()

    for path in track(files, description="predicting", total=len(files), enabled=progress):
        kind = media_kind(path) if path.is_file() else "missing"
        if kind == "audio":
            try:
                pending.append((path, predictor.load_audio(path)))
            except DataError as exc:
                pending.append((path, exc))
            if len(pending) >= batch_size:
                yield from flush()
            continue
        yield from flush()  # keep input order
        yield _one_file(predictor, path, kind, transcribe=transcribe)
    yield from flush()


def _one_file(predictor: Predictor, path: Path, kind: str, *, transcribe: bool) -> FileResult:
    try:
        if kind == "missing":
            raise DataError(path, "no such file")
        if kind == "unknown":
            raise DataError(path, f"unsupported file type {path.suffix or '(no extension)'!r}: "
                                  "expected audio, an image, a video or a .txt file")
        if kind == "image":
            return FileResult(path=str(path), kind=kind, status="ok", prediction=predictor.predict_image(path))
        if kind == "video":
            return FileResult(path=str(path), kind=kind, status="ok",
                              video=predictor.predict_video(path, transcribe=transcribe))
        text = _read_text(path)
        return FileResult(path=str(path), kind=kind, status="ok", prediction=predictor.predict_text(text))
    except DataError as exc:
        return FileResult(path=str(path), kind=kind if kind != "missing" else "unknown", status="unreadable",
                          problem=exc.problem)


def _read_text(path: Path, max_chars: int = 100_000) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(path, "not UTF-8 text") from None
    if len(text) > max_chars:
        raise DataError(path, f"text is {len(text):,} characters, over the {max_chars:,} limit")
    return text
