"""Face models learn drawn faces; their TTA (the contract: tests/models/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emofuse.data.synthetic import draw_face
from emofuse.labels import FER7
from emofuse.models import create_model
from emofuse.models.face import ten_crops

FAST = {"train": {"epochs": 2, "batch_size": 16, "patience": 5}}


def _faces(per_class: int, seed: int) -> tuple[np.ndarray, list[str]]:
    X = np.stack([draw_face(label, seed=seed + 10 * k + i) for k in range(per_class) for i, label in enumerate(FER7)])
    return X, [label for _ in range(per_class) for label in FER7]


@pytest.fixture(scope="module")
def data():
    return _faces(4, 0), _faces(2, 1000)


def test_drawn_faces_are_learnable(data):
    (X, y), _ = data
    X_big, y_big = _faces(20, 5000)
    # Augmentation off: this checks that the loop, the net and the labels fit together, so the
    # narrow ResNet must at least learn its own training faces.
    model = create_model("face_resnet", arch_params={"widths": [8, 16, 16, 32]}, tta=False,
                         augment={"rotate_degrees": 0, "erase_p": 0, "flip": False},
                         train={"epochs": 12, "batch_size": 32, "lr": 3e-3, "patience": 12})
    model.fit(X_big, y_big, labels=FER7, X_val=X, y_val=y)
    accuracy = (model.predict_proba(X_big).argmax(axis=1) == np.array([FER7.index(v) for v in y_big])).mean()
    assert accuracy > 0.6  # chance is 1/7


def test_ten_crops():
    x = torch.arange(48 * 48, dtype=torch.float32).reshape(1, 1, 48, 48)
    views = ten_crops(x, 44)
    assert len(views) == 10 and all(v.shape == (1, 1, 44, 44) for v in views)
    torch.testing.assert_close(views[5], views[0].flip(-1))
    assert views[4][0, 0, 0, 0] == x[0, 0, 2, 2]
