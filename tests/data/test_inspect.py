import shutil

from emofuse.data import load_fer2013, load_ravdess
from emofuse.data.inspect import known_checksums, summarize, verify
from emofuse.errors import BadFile


def test_summary_counts_and_duplicates(ravdess_dir, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(ravdess_dir / "Actor_07", root / "Actor_07")
    # The real RAVDESS quirk: one recording under two repetition numbers.
    shutil.copy(root / "Actor_07" / "03-01-03-01-01-01-07.wav", root / "Actor_07" / "03-01-03-01-01-02-07.wav")
    summary = summarize(load_ravdess(root))
    assert summary["clips"] == 16 and summary["speakers"] == 1
    assert summary["labels"]["happy"] == 3
    assert summary["splits"] == {}
    assert summary["duplicates"]["groups"] == 1 and summary["duplicates"]["extra_copies"] == 1
    assert summary["duplicates"]["conflicting_labels"] == 0
    assert summary["unreadable"] == []


def test_duplicates_with_conflicting_labels_in_csv(fer_csv, tmp_path):
    lines = fer_csv.read_text().splitlines()
    _emotion, pixels, usage = lines[1].split(",")
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join([*lines, f"3,{pixels},{usage}"]) + "\n")
    dup = summarize(load_fer2013(path))["duplicates"]
    assert dup["groups"] == 1 and dup["conflicting_labels"] == 1


def test_verify_decodes_and_checks_checksums(ravdess_dir, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(ravdess_dir / "Actor_01", root / "Actor_01")
    files = sorted((root / "Actor_01").glob("*.wav"))
    lines = ["path\tsha256"]
    for path in files:
        import hashlib

        lines.append(f"Actor_01/{path.name}\t{hashlib.sha256(path.read_bytes()).hexdigest()}")
    lines.append("Actor_01/03-01-08-02-02-02-01.wav\t" + "0" * 64)  # listed but absent
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    assert len(known_checksums(root)) == 16
    report = verify(load_ravdess(root))
    assert report.files == 15 and report.checksums_checked == 15 and report.decoded == 15
    assert report.missing == [str((root / "Actor_01" / "03-01-08-02-02-02-01.wav").resolve())]
    assert not report.ok

    # Flip one byte in the middle of a file: it still decodes, the checksum catches it.
    data = bytearray(files[3].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[3].write_bytes(bytes(data))
    report = verify(load_ravdess(root))
    assert [b.path for b in report.bad] == [str(files[3])]
    assert "sha256 mismatch" in report.bad[0].problem


def test_verify_reports_files_the_loader_rejected(ravdess_dir, tmp_path):
    root = tmp_path / "r"
    shutil.copytree(ravdess_dir / "Actor_01", root / "Actor_01")
    (root / "Actor_01" / "03-01-02-01-01-01-01.wav").write_bytes(b"")
    report = verify(load_ravdess(root, skip_bad=True))
    assert report.files == 15 and report.decoded == 14
    assert report.bad == [BadFile(str(root / "Actor_01" / "03-01-02-01-01-01-01.wav"), "empty file (0 bytes)")]
    assert report.to_dict()["ok"] is False


def test_real_ravdess_summary_and_verify(real_data):
    dataset = load_ravdess(real_data / "ravdess-speech-16k")
    summary = summarize(dataset)
    assert summary["clips"] == 1440 and summary["speakers"] == 24
    assert summary["duplicates"]["groups"] == 1  # the Actor_07 pair
    report = verify(dataset)
    assert report.ok and report.checksums_checked == 1440
