"""Small generated datasets in the real distribution formats, for the demo and the tests.

The audio is not speech: each emotion gets its own pitch contour and loudness envelope (plus
noise and a per-actor pitch offset), so a model can learn it, and the files carry real RAVDESS
names. The faces are drawn: an oval, eyes, brows and a mouth whose shape depends on the emotion.
Neither says anything about real accuracy; they exist so every path runs without the real data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from emofuse._io import atomic_write
from emofuse.labels import FER7, RAVDESS_CODES

# emotion code -> (base pitch Hz, pitch slope Hz/s, envelope rate Hz): distinct on purpose.
_VOICE = {
    "01": (140.0, 0.0, 2.0),
    "02": (120.0, -5.0, 1.0),
    "03": (220.0, 40.0, 4.0),
    "04": (110.0, -20.0, 1.5),
    "05": (200.0, 10.0, 6.0),
    "06": (260.0, 60.0, 8.0),
    "07": (150.0, -30.0, 3.0),
    "08": (300.0, 120.0, 5.0),
}


def tone_clip(emotion_code: str, *, actor: int, sample_rate_hz: int = 16_000, seconds: float = 0.6,
              seed: int = 0) -> np.ndarray:
    """A mono float32 clip ``(samples,)`` whose pitch and envelope encode ``emotion_code``."""
    rng = np.random.default_rng(seed)
    base, slope, rate = _VOICE[emotion_code]
    base *= 1.0 + 0.04 * ((actor % 5) - 2)  # actors differ a little, as voices do
    t = np.arange(int(sample_rate_hz * seconds)) / sample_rate_hz
    phase = 2 * np.pi * np.cumsum(base + slope * t) / sample_rate_hz
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * rate * t) ** 2
    y = envelope * (np.sin(phase) + 0.3 * np.sin(2 * phase)) * 0.3
    y += 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


# Formants (Hz) of four vowels, roughly /a/, /i/, /o/, /e/, and their bandwidths.
_VOWELS = ((700.0, 1220.0, 2600.0), (300.0, 2300.0, 3000.0), (500.0, 900.0, 2400.0), (400.0, 1700.0, 2500.0))
_FORMANT_BANDWIDTHS = (80.0, 100.0, 120.0)


def voiced_clip(*, seconds: float = 1.0, f0_hz: float = 140.0, sample_rate_hz: int = 16_000,
                seed: int = 0) -> np.ndarray:
    """Synthetic vowels ``(samples,)`` float32: a glottal pulse train with a moving pitch through four
    vowels' formant resonators, in syllables of 0.25 s. Not words, but shaped like a voice, so that a
    voice-activity detector hears speech (Silero: 0.77-0.93) where it hears none in a tone."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(sample_rate_hz * seconds)
    t = np.arange(n) / sample_rate_hz
    pitch = f0_hz * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 2 * np.pi)))
    pulses = (np.diff(np.floor(np.cumsum(pitch / sample_rate_hz)), prepend=0) > 0).astype(np.float64)
    source = lfilter([1.0], [1.0, -0.97], pulses)  # the glottal spectrum's downward tilt
    out = np.zeros(n)
    bounds = np.linspace(0, n, len(_VOWELS) + 1).astype(int)
    for vowel, start, stop in zip(_VOWELS, bounds[:-1], bounds[1:], strict=True):
        x = source[start:stop]
        for centre, bandwidth in zip(vowel, _FORMANT_BANDWIDTHS, strict=True):
            r = np.exp(-np.pi * bandwidth / sample_rate_hz)
            theta = 2 * np.pi * centre / sample_rate_hz
            x = lfilter([1 - r], [1.0, -2 * r * np.cos(theta), r * r], x)
        out[start:stop] = x
    y = out / max(np.abs(out).max(), 1e-12) * np.clip(np.sin(np.pi * 4 * t) ** 2 + 0.05, 0, 1)  # 4 syllables/s
    y += 0.002 * rng.standard_normal(n)  # a quiet room
    return (y / max(np.abs(y).max(), 1e-9) * 0.5).astype(np.float32)


def non_speech_sounds(*, seconds: float = 3.0, sample_rate_hz: int = 16_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Sounds that are not speech, by name: tones, a mains hum, chords, a sweep, vibrato and tremolo
    tones, synthetic melodies (sine, sawtooth, square notes), white, pink and brown noise, silence.
    Each ``(samples,)`` float32 peaking at 0.3 (silence at 0)."""
    rng = np.random.default_rng(seed)
    n = int(sample_rate_hz * seconds)
    t = np.arange(n) / sample_rate_hz

    def sine(f: float | np.ndarray) -> np.ndarray:
        return np.sin(2 * np.pi * f * t)

    def melody(kind: str) -> np.ndarray:
        notes = (261.6, 293.7, 329.6, 349.2, 392.0, 440.0)
        per = n // len(notes)
        out = np.zeros(n)
        for i, f in enumerate(notes):
            tt = np.arange(per) / sample_rate_hz
            phase = 2 * np.pi * f * tt
            harmonics = {"sine": [1], "saw": list(range(1, 20)), "square": list(range(1, 20, 2))}[kind]
            out[i * per : (i + 1) * per] = sum(np.sin(k * phase) / k for k in harmonics) * np.exp(-3 * tt)
        return out

    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.arange(spectrum.size), 1)
    brown = np.cumsum(rng.standard_normal(n))
    sounds = {
        "tone_220hz": sine(220.0), "tone_1khz": sine(1000.0),
        "hum_50hz": sine(50.0) + 0.5 * sine(100.0) + 0.25 * sine(150.0),
        "chord_c_major": sine(261.6) + sine(329.6) + sine(392.0),
        "sweep_200_800hz": np.sin(2 * np.pi * (200 + 100 * t) * t),
        "vibrato_tone": np.sin(2 * np.pi * 220 * t + 3 * np.sin(2 * np.pi * 5 * t)),
        "tremolo_tone": sine(220.0) * (0.5 + 0.5 * sine(4.0)),
        "melody_sine": melody("sine"), "melody_sawtooth": melody("saw"), "melody_square": melody("square"),
        "white_noise": rng.standard_normal(n), "pink_noise": np.fft.irfft(spectrum / np.sqrt(freqs), n),
        "brown_noise": brown - np.convolve(brown, np.ones(801) / 801, mode="same"),
    }
    out = {name: (y / np.abs(y).max() * 0.3).astype(np.float32) for name, y in sounds.items()}
    out["silence"] = np.zeros(n, np.float32)
    return out


def make_ravdess(
    root: str | Path,
    *,
    actors: Iterable[int] = range(1, 25),
    emotions: Sequence[str] = tuple(RAVDESS_CODES),
    statements: Sequence[int] = (1,),
    repetitions: Sequence[int] = (1,),
    sample_rate_hz: int = 16_000,
    seconds: float = 0.6,
    audio_format: str = "wav",
    seed: int = 0,
) -> list[Path]:
    """Write RAVDESS-named clips under ``root/Actor_XX/``; returns the paths written.

    Non-neutral emotions get both intensities, neutral only normal (as in RAVDESS).
    """
    import soundfile as sf

    root = Path(root)
    written = []
    counter = 0
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emotion in emotions:
            for intensity in (1,) if emotion == "01" else (1, 2):
                for statement in statements:
                    for repetition in repetitions:
                        name = f"03-01-{emotion}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"
                        path = folder / f"{name}.{audio_format}"
                        y = tone_clip(emotion, actor=actor, sample_rate_hz=sample_rate_hz, seconds=seconds,
                                      seed=seed + counter)
                        counter += 1
                        with atomic_write(path, "wb") as handle:
                            sf.write(handle, y, sample_rate_hz, format=audio_format.upper())
                        written.append(path)
    return written


def draw_face(label: str, *, seed: int = 0, side: int = 48) -> np.ndarray:
    """A ``(side, side)`` uint8 grey cartoon face showing ``label`` (a FER2013 class name)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) / side
    cx, cy = 0.5 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02)
    image = np.full((side, side), 40.0 + rng.normal(0, 8))
    face = ((xx - cx) / 0.38) ** 2 + ((yy - cy) / 0.46) ** 2 <= 1
    image[face] = 170 + rng.normal(0, 10)
    eye_open = {"surprise": 0.06, "fear": 0.055, "angry": 0.03, "disgust": 0.025}.get(label, 0.04)
    for ex in (cx - 0.14, cx + 0.14):
        eye = ((xx - ex) / 0.06) ** 2 + ((yy - (cy - 0.1)) / eye_open) ** 2 <= 1
        image[eye] = 30
    # Brows: slanted in for anger, raised for surprise and fear, level otherwise.
    slant = {"angry": 0.08, "sad": -0.06, "fear": -0.04}.get(label, 0.0)
    lift = {"surprise": -0.06, "fear": -0.04}.get(label, 0.0)
    for side_sign in (-1, 1):
        bx = cx + side_sign * 0.14
        # Inner ends (towards the nose) drop by `slant` for anger, rise for sadness.
        brow_y = cy - 0.2 + lift - side_sign * slant * (xx - bx) / 0.08
        brow = (np.abs(xx - bx) < 0.08) & (np.abs(yy - brow_y) < 0.015)
        image[brow] = 50
    # Mouth: a parabola whose curvature carries the valence, or an open oval.
    my = cy + 0.22
    if label in ("surprise", "fear"):
        mouth = ((xx - cx) / 0.07) ** 2 + ((yy - my) / (0.09 if label == "surprise" else 0.05)) ** 2 <= 1
    else:
        curve = {"happy": -0.9, "sad": 0.8, "angry": 0.4, "disgust": 0.3, "neutral": 0.0}[label]
        width = {"happy": 0.16, "disgust": 0.1}.get(label, 0.13)
        mouth_y = my + curve * ((xx - cx) ** 2 / width**2 - 0.5) * 0.05
        mouth = (np.abs(xx - cx) < width) & (np.abs(yy - mouth_y) < 0.02 + (0.015 if label == "disgust" else 0))
    image[mouth] = 35
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_fer2013_csv(path: str | Path, *, per_class: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write a small ``fer2013.csv`` (``emotion,pixels,Usage``) of drawn faces.

    ``per_class`` gives images per class for each Usage; default 6 Training, 2 PublicTest, 2 PrivateTest.
    """
    counts = per_class or {"Training": 6, "PublicTest": 2, "PrivateTest": 2}
    path = Path(path)
    k = 0
    with atomic_write(path) as handle:
        handle.write("emotion,pixels,Usage\n")
        for usage, n in counts.items():
            for index, label in enumerate(FER7):
                for _ in range(n):
                    pixels = " ".join(map(str, draw_face(label, seed=seed + k).ravel()))
                    handle.write(f"{index},{pixels},{usage}\n")
                    k += 1
    return path


def make_fer2013_folders(root: str | Path, *, per_class: dict[str, int] | None = None, seed: int = 0) -> list[Path]:
    """Write the image-folder form: ``train/<class>/Training_<id>.jpg``, ``test/<class>/{Public,Private}Test_<id>.jpg``."""
    from PIL import Image

    counts = per_class or {"Training": 6, "PublicTest": 2, "PrivateTest": 2}
    root = Path(root)
    written = []
    k = 0
    for usage, n in counts.items():
        top = "train" if usage == "Training" else "test"
        for label in FER7:
            folder = root / top / label
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(n):
                path = folder / f"{usage}_{1000 + k}.jpg"
                Image.fromarray(draw_face(label, seed=seed + k)).save(path, quality=95)
                written.append(path)
                k += 1
    return written
