"""Audio: every format load_audio accepts or refuses, waveforms prepared, resampled, trimmed, chunked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emofuse.errors import DataError
from emofuse.features.audio import chunk, load_audio, prepare_waveform, resample, trim_silence


def tone(freq_hz: float, *, seconds: float, sr: int, amplitude: float = 0.3) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(round(seconds * sr)) / sr)).astype(np.float32)


def peak_frequency_hz(y: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.argmax(spectrum) * sr / y.size)


# ---------------------------------------------------------------------------------------------
# load_audio: formats it reads


def test_load_wav_16k_mono(tmp_path: Path) -> None:
    y = tone(440, seconds=1.0, sr=16_000)
    sf.write(tmp_path / "a.wav", y, 16_000)
    loaded = load_audio(tmp_path / "a.wav")
    assert loaded.dtype == np.float32 and loaded.shape == (16_000,)
    np.testing.assert_allclose(loaded, y, atol=1 / 32_768)  # PCM_16 quantisation


def test_load_stereo_flac_44k_resamples_and_keeps_pitch(tmp_path: Path) -> None:
    left, right = (
        tone(440, seconds=1.0, sr=44_100, amplitude=0.4),
        tone(440, seconds=1.0, sr=44_100, amplitude=0.2),
    )
    sf.write(tmp_path / "a.flac", np.stack([left, right], axis=1), 44_100)
    loaded = load_audio(str(tmp_path / "a.flac"))
    assert loaded.shape == (16_000,)
    assert peak_frequency_hz(loaded, 16_000) == pytest.approx(440, abs=2)
    # Channels are averaged: amplitude (0.4 + 0.2) / 2, away from the resampler's edges.
    assert np.abs(loaded[1000:-1000]).max() == pytest.approx(0.3, abs=0.01)


def test_load_8k_wav_upsamples(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", tone(440, seconds=0.5, sr=8_000), 8_000)
    loaded = load_audio(tmp_path / "a.wav")
    assert loaded.shape == (8_000,)
    assert peak_frequency_hz(loaded, 16_000) == pytest.approx(440, abs=2)
    assert load_audio(tmp_path / "a.wav", sample_rate_hz=8_000).shape == (4_000,)


def test_load_ogg(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.ogg", tone(440, seconds=1.0, sr=16_000), 16_000)
    loaded = load_audio(tmp_path / "a.ogg")
    assert abs(loaded.size - 16_000) <= 160
    assert peak_frequency_hz(loaded, 16_000) == pytest.approx(440, abs=2)


def test_load_mp3(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    try:
        sf.write(path, tone(440, seconds=1.0, sr=16_000), 16_000)
    except (sf.LibsndfileError, TypeError, ValueError) as exc:
        pytest.skip(f"this libsndfile cannot write mp3: {exc}")
    loaded = load_audio(path)
    assert abs(loaded.size - 16_000) <= 0.1 * 16_000  # the codec adds encoder delay and padding
    assert peak_frequency_hz(loaded, 16_000) == pytest.approx(440, abs=2)


def write_with_av(
    path: Path, *, codec: str | None, seconds: float = 1.0, rate_hz: int = 48_000, video: bool = False
) -> None:
    """A stereo 440 Hz tone (and/or a black 64x64 video track) in whatever container ``path`` names."""
    av = pytest.importorskip("av")
    y = tone(440, seconds=seconds, sr=rate_hz)
    with av.open(str(path), "w") as container:
        # Every stream must exist before the first packet is muxed (that writes the header).
        if video:
            video_stream = container.add_stream("mpeg4", rate=10)
            video_stream.width = video_stream.height = 64
            video_stream.pix_fmt = "yuv420p"
        if codec is not None:
            audio_stream = container.add_stream(codec, rate=rate_hz)
            audio_stream.layout = "stereo"
        if video:
            for index in range(round(10 * seconds)):
                picture = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
                picture.pts = index
                container.mux(video_stream.encode(picture))
            container.mux(video_stream.encode(None))
        if codec is not None:
            for start in range(0, y.size, 1024):
                block = np.ascontiguousarray(np.tile(y[start : start + 1024], (2, 1)))  # (channels, samples)
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate_hz, start
                container.mux(audio_stream.encode(frame))
            container.mux(audio_stream.encode(None))


@pytest.mark.parametrize(
    ("name", "codec", "video"),
    [
        ("a.m4a", "aac", False),
        ("a.webm", "libopus", False),
        ("a.mp4", "aac", True),
        # Packed (interleaved) int16 frames: must be de-interleaved and scaled, not read as mono.
        ("a.mkv", "pcm_s16le", False),
    ],
)
def test_load_formats_soundfile_cannot_read_with_pyav(
    tmp_path: Path, name: str, codec: str, video: bool
) -> None:
    path = tmp_path / name
    write_with_av(path, codec=codec, video=video)
    with pytest.raises(sf.LibsndfileError):
        sf.info(path)  # so this really goes through the PyAV fallback
    loaded = load_audio(path)
    assert loaded.dtype == np.float32 and loaded.ndim == 1
    assert abs(loaded.size - 16_000) <= 0.05 * 16_000  # AAC adds a few ms of priming
    assert peak_frequency_hz(loaded, 16_000) == pytest.approx(440, abs=2)
    assert np.abs(loaded[1000:-1000]).max() == pytest.approx(0.3, abs=0.02)


def test_video_without_audio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "silent-film.mp4"
    write_with_av(path, codec=None, video=True)
    with pytest.raises(DataError, match="no audio stream") as caught:
        load_audio(path)
    assert caught.value.path == str(path)


def test_silent_and_short_clips_load(tmp_path: Path) -> None:
    sf.write(tmp_path / "silent.wav", np.zeros(16_000, dtype=np.float32), 16_000)
    np.testing.assert_array_equal(load_audio(tmp_path / "silent.wav"), np.zeros(16_000))
    np.testing.assert_array_equal(load_audio(tmp_path / "silent.wav", trim=True), np.zeros(16_000))
    sf.write(tmp_path / "short.wav", tone(440, seconds=0.1, sr=16_000), 16_000)
    assert load_audio(tmp_path / "short.wav").shape == (1_600,)


def test_load_with_trim_drops_silence(tmp_path: Path) -> None:
    y = np.concatenate([np.zeros(8_000), tone(440, seconds=1.0, sr=16_000), np.zeros(8_000)]).astype(
        np.float32
    )
    sf.write(tmp_path / "padded.wav", y, 16_000)
    trimmed = load_audio(tmp_path / "padded.wav", trim=True)
    assert 16_000 <= trimmed.size <= 16_000 + 2 * 400


def test_longer_than_max_seconds_is_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "long.wav", np.zeros(3 * 16_000, dtype=np.float32), 16_000)
    with pytest.raises(DataError, match=r"3\.0 s long.*chunked by the caller"):
        load_audio(tmp_path / "long.wav", max_seconds=2.0)
    assert load_audio(tmp_path / "long.wav", max_seconds=None).shape == (48_000,)


def test_longer_than_max_seconds_is_refused_for_pyav_formats(tmp_path: Path) -> None:
    path = tmp_path / "long.m4a"
    write_with_av(path, codec="aac", seconds=3.0)
    with pytest.raises(DataError, match="chunked by the caller"):
        load_audio(path, max_seconds=2.0)


# ---------------------------------------------------------------------------------------------
# load_audio: files it refuses, each naming the file and the problem


def test_nan_samples_are_refused(tmp_path: Path) -> None:
    y = tone(440, seconds=0.1, sr=16_000)
    y[100] = np.nan
    sf.write(tmp_path / "nan.wav", y, 16_000, subtype="FLOAT")
    with pytest.raises(DataError, match="non-finite") as caught:
        load_audio(tmp_path / "nan.wav")
    assert caught.value.path == str(tmp_path / "nan.wav")


def test_text_file_named_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(DataError, match="text") as caught:
        load_audio(path)
    assert caught.value.path == str(path)


def test_random_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(4).integers(0, 256, 4_000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="not readable as audio"):
        load_audio(path)


def test_empty_and_missing_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DataError, match="empty file") as caught:
        load_audio(tmp_path / "empty.wav")
    assert caught.value.path == str(tmp_path / "empty.wav")
    with pytest.raises(DataError, match="not found"):
        load_audio(tmp_path / "missing.wav")


def test_zero_length_audio_is_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(DataError, match="zero-length"):
        load_audio(tmp_path / "zero.wav")


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_truncated_files_are_refused(tmp_path: Path, suffix: str) -> None:
    whole = tmp_path / f"whole{suffix}"
    sf.write(whole, tone(440, seconds=1.0, sr=16_000), 16_000)
    cut = tmp_path / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"truncated|does not decode") as caught:
        load_audio(cut)
    assert caught.value.path == str(cut)


def test_truncated_m4a_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.m4a"
    write_with_av(whole, codec="aac")
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(whole.read_bytes()[:2_000])
    with pytest.raises(DataError, match=r"cut\.m4a"):
        load_audio(cut)


# ---------------------------------------------------------------------------------------------
# In-memory conversion, trimming, chunking


def test_prepare_waveform_mixes_stereo_and_resamples() -> None:
    stereo = np.stack(
        [tone(440, seconds=1.0, sr=44_100, amplitude=0.4), np.zeros(44_100, np.float32)], axis=1
    )
    mono = prepare_waveform(stereo, sr=44_100)  # (samples, channels) as soundfile gives it
    assert mono.shape == (16_000,) and mono.dtype == np.float32
    assert peak_frequency_hz(mono, 16_000) == pytest.approx(440, abs=2)
    assert np.abs(mono[1000:-1000]).max() == pytest.approx(0.2, abs=0.01)
    assert prepare_waveform(tone(440, seconds=0.5, sr=8_000), sr=8_000).shape == (8_000,)


def test_prepare_waveform_scales_integer_pcm_and_copies() -> None:
    pcm = np.array([0, 16_384, -32_768, 32_767], dtype=np.int16)
    np.testing.assert_allclose(prepare_waveform(pcm, sr=16_000), [0.0, 0.5, -1.0, 32_767 / 32_768])
    y = np.zeros(100, dtype=np.float32)
    assert not np.shares_memory(prepare_waveform(y, sr=16_000), y)


def test_prepare_waveform_refuses_bad_arrays() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        prepare_waveform(np.array([0.0, np.inf, 0.0]), sr=16_000)
    with pytest.raises(ValueError, match="non-finite"):
        prepare_waveform(np.full((10, 2), np.nan), sr=44_100)
    with pytest.raises(ValueError, match="empty"):
        prepare_waveform(np.zeros(0), sr=16_000)
    with pytest.raises(ValueError, match="channels-last"):
        prepare_waveform(np.zeros((2, 16_000)), sr=16_000)


def test_resample_keeps_layout() -> None:
    stereo = np.zeros((44_100, 2), dtype=np.float64)
    out = resample(stereo, orig_hz=44_100, target_hz=16_000)
    assert out.shape == (16_000, 2) and out.dtype == np.float32
    with pytest.raises(ValueError):
        resample(stereo, orig_hz=0, target_hz=16_000)


def test_trim_silence_keeps_the_loud_part() -> None:
    sr = 16_000
    loud = tone(440, seconds=1.0, sr=sr)
    quiet_noise = 1e-4 * np.random.default_rng(5).standard_normal(sr // 2)  # ~ -70 dB below the tone
    y = np.concatenate([quiet_noise, loud, quiet_noise]).astype(np.float32)
    trimmed = trim_silence(y, sr=sr, top_db=40)
    assert sr <= trimmed.size <= sr + 2 * 400  # at most one 25 ms frame of margin each side
    start = int(np.flatnonzero(y == trimmed[0])[0])
    assert sr // 2 - 400 <= start <= sr // 2
    # With a generous top_db the noise counts as sound and nothing is cut.
    assert trim_silence(y, sr=sr, top_db=100).size == y.size


def test_trim_silence_leaves_silent_and_loud_clips_alone() -> None:
    silent = np.zeros(5_000, dtype=np.float32)
    np.testing.assert_array_equal(trim_silence(silent, sr=16_000), silent)
    loud = tone(440, seconds=0.5, sr=16_000)
    assert trim_silence(loud, sr=16_000).size == loud.size
    assert trim_silence(loud[:10], sr=16_000).size == 10  # shorter than one frame


def test_chunk_windows_and_tail_rule() -> None:
    sr = 100
    ten_seconds = np.arange(10 * sr, dtype=np.float32)
    chunks = chunk(ten_seconds, sr=sr, window_seconds=4, hop_seconds=2)
    assert [c[0] / sr for c in chunks] == [0, 2, 4, 6]  # the window at 6 s reaches the end
    assert all(c.size == 4 * sr for c in chunks)
    # A 2 s tail is half a window: kept. A 1 s tail is not.
    assert [c.size for c in chunk(ten_seconds, sr=sr, window_seconds=4, hop_seconds=4)] == [400, 400, 200]
    assert [c.size for c in chunk(ten_seconds[: 9 * sr], sr=sr, window_seconds=4, hop_seconds=4)] == [
        400,
        400,
    ]


def test_chunk_short_clip_is_one_chunk() -> None:
    y = np.ones(300, dtype=np.float32)
    (only,) = chunk(y, sr=100, window_seconds=4, hop_seconds=2)
    np.testing.assert_array_equal(only, y)
    with pytest.raises(ValueError):
        chunk(y, sr=100, window_seconds=0, hop_seconds=2)
    with pytest.raises(ValueError):
        chunk(np.zeros(0), sr=100, window_seconds=4, hop_seconds=2)
