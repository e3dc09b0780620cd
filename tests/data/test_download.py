"""Downloading (checksums, HTTP Range resume), extracting and ingesting, against a local HTTP server."""

from __future__ import annotations

import hashlib
import re
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emofuse.cli import app
from emofuse.data import load_fer2013, load_ravdess
from emofuse.data.download import Archive, DownloadError, download, extract, fetch_ravdess
from emofuse.data.synthetic import make_fer2013_csv, make_ravdess
from emofuse.errors import DataError

SPEECH_NAME = "Audio_Speech_Actors_01-24.zip"
ZIP_PATH = "/files/Audio_Speech_Actors_01-24.zip"
CLIPS = 2 * 2 * 2  # actors [1, 2] x emotions ["03", "05"] x both intensities
TIMEOUT_S = 10.0  # every request in these tests is local; nothing should come close to this


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class ServerState:
    """What the test server serves, how it misbehaves, and what it was asked for."""

    base_url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    cut_first_after: int | None = None  # bytes sent on the first request before hanging up
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def ranges(self) -> list[str | None]:
        return [rng for _path, rng in self.requests]


def handler_for(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            with state.lock:
                state.requests.append((self.path, rng))
                first = len(state.requests) == 1
            body = state.files.get(self.path.split("?")[0])
            if body is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if rng is not None:
                match = re.fullmatch(r"bytes=(\d+)-", rng)
                assert match, f"unexpected Range header {rng!r}"
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if first and state.cut_first_after is not None:
                # Promise the whole payload, send part of it, hang up.
                self.wfile.write(payload[: state.cut_first_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

    return Handler


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def speech_archive(server: ServerState, zip_bytes: bytes, **overrides: str | None) -> Archive:
    fields = {"name": SPEECH_NAME, "url": server.url(ZIP_PATH), "md5": md5_of(zip_bytes)} | overrides
    return Archive(**fields)


def zip_folders(src: Path, out: Path) -> Path:
    """Zip ``src/Actor_XX/*`` with the Actor folders at top level, like the official archive."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(src).as_posix())
    return out


def leftovers(root: Path) -> list[str]:
    """Temporary entries a download or extraction must not leave behind."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.endswith((".part", ".tmp")) or p.name.startswith((".downloads", ".extract-"))
    )


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ravdess_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small RAVDESS-format zip: Actor_01/ and Actor_02/ at top level, 8 WAV clips."""
    src = tmp_path_factory.mktemp("ravdess_src")
    make_ravdess(src, actors=[1, 2], emotions=["03", "05"], seconds=0.2)
    return zip_folders(src, tmp_path_factory.mktemp("ravdess_zip") / SPEECH_NAME)


@pytest.fixture(scope="module")
def zip_bytes(ravdess_zip: Path) -> bytes:
    return ravdess_zip.read_bytes()


@pytest.fixture
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, zip_bytes: bytes) -> ServerState:
    """A local HTTP server on 127.0.0.1 serving the RAVDESS zip at ZIP_PATH."""
    for var in ("no_proxy", "NO_PROXY"):  # never send 127.0.0.1 through a configured proxy
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    state = ServerState(files={ZIP_PATH: zip_bytes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    request.addfinalizer(stop)
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    return state


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# --- download() ------------------------------------------------------------------------------


def test_download_fetches_and_verifies(server, zip_bytes, tmp_path):
    path = download(speech_archive(server, zip_bytes), tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert path == tmp_path / SPEECH_NAME
    assert path.read_bytes() == zip_bytes
    assert server.ranges() == [None]
    assert leftovers(tmp_path) == []


def test_download_verifies_sha256_too(server, zip_bytes, tmp_path):
    archive = speech_archive(server, zip_bytes, md5=None, sha256=hashlib.sha256(zip_bytes).hexdigest().upper())

    path = download(archive, tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert path.read_bytes() == zip_bytes


def test_interrupted_download_resumes_with_range(server, zip_bytes, tmp_path):
    cut = len(zip_bytes) // 3
    server.cut_first_after = cut

    path = download(speech_archive(server, zip_bytes), tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert server.ranges() == [None, f"bytes={cut}-"]
    assert path.read_bytes() == zip_bytes
    assert leftovers(tmp_path) == []


def test_partial_file_from_an_earlier_run_is_resumed(server, zip_bytes, tmp_path):
    cut = len(zip_bytes) // 2
    (tmp_path / f"{SPEECH_NAME}.part").write_bytes(zip_bytes[:cut])

    path = download(speech_archive(server, zip_bytes), tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert server.ranges() == [f"bytes={cut}-"]
    assert path.read_bytes() == zip_bytes


def test_wrong_checksum_removes_the_partial_file(server, zip_bytes, tmp_path):
    archive = speech_archive(server, zip_bytes, md5="0" * 32)

    with pytest.raises(DownloadError, match="md5 mismatch"):
        download(archive, tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert len(server.requests) == 1
    assert not (tmp_path / f"{SPEECH_NAME}.part").exists()
    assert not (tmp_path / SPEECH_NAME).exists()


def test_http_404_is_a_download_error(server, zip_bytes, tmp_path):
    archive = speech_archive(server, zip_bytes, url=server.url("/files/missing.zip"))

    with pytest.raises(DownloadError, match="404"):
        download(archive, tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert len(server.requests) == 1  # an HTTP error is final: no retries
    assert list(tmp_path.iterdir()) == []


def test_verified_file_already_present_is_not_fetched_again(server, zip_bytes, tmp_path):
    (tmp_path / SPEECH_NAME).write_bytes(zip_bytes)

    path = download(speech_archive(server, zip_bytes), tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert path == tmp_path / SPEECH_NAME
    assert server.requests == []


def test_present_file_with_wrong_checksum_is_replaced(server, zip_bytes, tmp_path):
    (tmp_path / SPEECH_NAME).write_bytes(b"not the archive")

    path = download(speech_archive(server, zip_bytes), tmp_path, progress=False, timeout_seconds=TIMEOUT_S)

    assert server.ranges() == [None]
    assert path.read_bytes() == zip_bytes


# --- fetch_ravdess() -------------------------------------------------------------------------


def test_fetch_ravdess_downloads_extracts_and_cleans_up(server, zip_bytes, tmp_path):
    to = tmp_path / "ravdess"

    root = fetch_ravdess(to, archives={"speech": speech_archive(server, zip_bytes)}, progress=False)

    assert root == to
    assert (to / "Actor_01" / "03-01-03-01-01-01-01.wav").is_file()
    assert sorted(p.name for p in to.iterdir()) == ["Actor_01", "Actor_02"]
    dataset = load_ravdess(to)
    assert len(dataset) == CLIPS
    assert dataset.speakers() == ["01", "02"]
    assert leftovers(to) == []


def test_fetch_ravdess_keep_archive(server, zip_bytes, tmp_path):
    to = tmp_path / "ravdess"

    fetch_ravdess(to, archives={"speech": speech_archive(server, zip_bytes)}, keep_archive=True, progress=False)

    assert (to / ".downloads" / SPEECH_NAME).read_bytes() == zip_bytes
    assert len(load_ravdess(to)) == CLIPS


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_download_from_url(server, zip_bytes, runner, tmp_path):
    to = tmp_path / "ravdess"

    result = runner.invoke(app, ["data", "download", "ravdess", "--to", str(to),
                                 "--url", server.url(ZIP_PATH), "--md5", md5_of(zip_bytes), "-q"])

    assert result.exit_code == 0, result.output
    assert "ready at" in result.output
    assert len(load_ravdess(to)) == CLIPS
    assert leftovers(to) == []


def test_cli_url_without_checksum_exits_2(server, runner, tmp_path):
    to = tmp_path / "ravdess"

    result = runner.invoke(app, ["data", "download", "ravdess", "--to", str(to), "--url", server.url(ZIP_PATH)])

    assert result.exit_code == 2
    assert "--md5" in result.stderr
    assert server.requests == []
    assert not to.exists()


def test_cli_ingests_a_local_ravdess_zip(ravdess_zip, runner, tmp_path):
    to = tmp_path / "ravdess"

    result = runner.invoke(app, ["data", "download", "ravdess", "--from", str(ravdess_zip), "--to", str(to), "-q"])

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in to.iterdir()) == ["Actor_01", "Actor_02"]
    assert len(load_ravdess(to)) == CLIPS


def test_cli_fer2013_without_source_explains_kaggle(runner, tmp_path):
    to = tmp_path / "fer"

    result = runner.invoke(app, ["data", "download", "fer2013", "--to", str(to)])

    assert result.exit_code == 1
    assert "kaggle.com" in result.stdout
    assert "--from" in result.stdout
    assert not to.exists()


def test_cli_fer2013_ingests_a_csv(runner, tmp_path):
    csv = make_fer2013_csv(tmp_path / "src" / "fer2013.csv", per_class={"Training": 2, "PublicTest": 1})
    to = tmp_path / "fer"

    result = runner.invoke(app, ["data", "download", "fer2013", "--from", str(csv), "--to", str(to), "-q"])

    assert result.exit_code == 0, result.output
    assert (to / "fer2013.csv").read_bytes() == csv.read_bytes()
    dataset = load_fer2013(to)
    assert len(dataset) == 7 * 3
    assert dataset.split_counts() == {"Training": 14, "PublicTest": 7}


# --- extract() -------------------------------------------------------------------------------


def test_extract_refuses_a_member_outside_the_target(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as handle:
        handle.writestr("Actor_01/fine.txt", "fine")
        handle.writestr("../evil.txt", "escaped")
    target = tmp_path / "work" / "out"

    with pytest.raises(DataError, match="escapes the target"):
        extract(evil, target)

    assert not (tmp_path / "work" / "evil.txt").exists()
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["out"]
    assert list(target.iterdir()) == []


def test_extract_truncated_zip_is_a_data_error(zip_bytes, tmp_path):
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(zip_bytes[: len(zip_bytes) // 2])
    target = tmp_path / "out"

    with pytest.raises(DataError):
        extract(truncated, target)

    assert list(target.iterdir()) == []


def test_extract_zip_with_bad_crc_is_a_data_error(tmp_path):
    # Stored (uncompressed) member whose bytes were changed after the CRC was written.
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as handle:
        handle.writestr("Actor_01/data.bin", b"A" * 4096)
    raw = bytearray(damaged.read_bytes())
    at = raw.index(b"A" * 64)
    raw[at : at + 64] = b"B" * 64
    damaged.write_bytes(bytes(raw))
    target = tmp_path / "out"

    with pytest.raises(DataError, match="corrupt"):
        extract(damaged, target)

    assert list(target.iterdir()) == []


def test_extract_zip_with_damaged_deflate_stream_is_a_data_error(tmp_path):
    damaged = tmp_path / "damaged.zip"
    payload = bytes(range(256)) * 64
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("Actor_01/data.bin", payload)
    raw = bytearray(damaged.read_bytes())
    start = len("PK\x03\x04") + 26 + len("Actor_01/data.bin")  # first byte of the compressed data
    raw[start : start + 16] = b"\xff" * 16
    damaged.write_bytes(bytes(raw))

    with pytest.raises(DataError, match="corrupt"):
        extract(damaged, tmp_path / "out")
