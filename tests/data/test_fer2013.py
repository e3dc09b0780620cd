import gzip
import shutil

import numpy as np
import pytest

from emofuse.data import load_fer2013
from emofuse.data.synthetic import draw_face
from emofuse.errors import DataError
from emofuse.labels import FER7


def test_csv_keeps_the_official_split_and_pixels(fer_csv):
    dataset = load_fer2013(fer_csv)
    assert dataset.labels == FER7
    assert dataset.split_counts() == {"Training": 42, "PublicTest": 14, "PrivateTest": 14}
    assert dataset.pixels.shape == (70, 48, 48) and dataset.pixels.dtype == np.uint8
    np.testing.assert_array_equal(dataset.pixels[0], draw_face("angry", seed=0))
    assert dataset.samples[0].path.endswith("#line=2")


def test_gzipped_csv_and_folder_holding_it(fer_csv, tmp_path):
    gz = tmp_path / "fer2013.csv.gz"
    with open(fer_csv, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert len(load_fer2013(gz)) == 70
    assert len(load_fer2013(tmp_path)) == 70  # a folder holding fer2013.csv.gz
    nested = tmp_path / "kaggle" / "fer2013"
    nested.mkdir(parents=True)
    shutil.copy(fer_csv, nested / "fer2013.csv")
    assert len(load_fer2013(tmp_path / "kaggle")) == 70  # as fer2013.tar.gz unpacks


def test_image_folders(fer_folders):
    dataset = load_fer2013(fer_folders)
    assert dataset.split_counts() == {"Training": 42, "PublicTest": 14, "PrivateTest": 14}
    assert dataset.label_counts() == {label: 10 for label in FER7}
    assert dataset.pixels is None


def _write_csv(path, rows):
    path.write_text("emotion,pixels,Usage\n" + "".join(f"{e},{p},{u}\n" for e, p, u in rows))
    return path


def test_wrong_pixel_count_names_file_and_line(tmp_path):
    good = " ".join(["7"] * 2304)
    path = _write_csv(tmp_path / "fer2013.csv", [(0, good, "Training"), (3, " ".join(["7"] * 2000), "Training"),
                                                  (9, good, "PublicTest"), (1, good, "Nope")])
    with pytest.raises(DataError) as info:
        load_fer2013(path)
    assert info.value.path == f"{path} line 3"
    assert "expected 2304 pixel values" in info.value.problem and "2000" in info.value.problem
    dataset = load_fer2013(path, skip_bad=True)
    assert len(dataset) == 1
    problems = [b.problem for b in dataset.bad_files]
    assert len(problems) == 3
    assert any("class index" in p for p in problems) and any("Usage" in p for p in problems)


def test_csv_without_usage_is_refused_clearly(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("emotion,pixels\n0," + " ".join(["1"] * 2304) + "\n")
    with pytest.raises(DataError, match="missing column"):
        load_fer2013(path)


def test_bad_images_in_folders(fer_folders, tmp_path):
    root = tmp_path / "fer"
    shutil.copytree(fer_folders, root)
    (root / "train" / "happy" / "Training_1.jpg").write_text("not a jpeg")
    (root / "train" / "happy" / "PrivateTest_5.jpg").write_bytes((root / "test" / "sad").glob("*.jpg").__next__().read_bytes())
    (root / "train" / "bored").mkdir()
    (root / "train" / "bored" / "Training_2.jpg").write_bytes(b"")
    dataset = load_fer2013(root, skip_bad=True)
    problems = {b.path.split("/")[-1]: b.problem for b in dataset.bad_files}
    assert "text" in problems["Training_1.jpg"]
    assert "inside train/" in problems["PrivateTest_5.jpg"]
    assert "not a FER2013 class" in problems["Training_2.jpg"]
    assert len(dataset) == 70


def test_not_fer2013(tmp_path):
    with pytest.raises(DataError, match="not FER2013"):
        load_fer2013(tmp_path)


def test_real_fer2013_official_split(real_data):
    dataset = load_fer2013(real_data / "fer2013")
    assert dataset.split_counts() == {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
    assert dataset.label_counts() == {"angry": 4953, "disgust": 547, "fear": 5121, "happy": 8989, "sad": 6077,
                                      "surprise": 4002, "neutral": 6198}
    assert not dataset.bad_files


def test_a_row_with_several_problems_names_them_all(tmp_path):
    path = _write_csv(tmp_path / "fer2013.csv", [(9, " ".join(["300"] * 2304), "Nope"), (2, "1 2 x", "Training")])
    dataset = load_fer2013(path, skip_bad=True)
    first, second = (b.problem for b in dataset.bad_files)
    assert "class index" in first and "Usage 'Nope'" in first and "0..255" in first
    assert "space-separated integers" in second and "class index" not in second
