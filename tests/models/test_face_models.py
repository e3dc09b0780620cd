"""Face models learn drawn faces; their augmentation and TTA (the contract: tests/models/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emofuse.data.synthetic import draw_face
from emofuse.labels import FER7
from emofuse.models import create_model
from emofuse.models.face import ten_crops
from emofuse.training.face_augment import FaceAugmentConfig, augment_faces

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


def test_augment_faces_shapes_and_independence():
    x = torch.rand(8, 1, 48, 48)
    out = augment_faces(x, FaceAugmentConfig(), generator=torch.Generator().manual_seed(0))
    assert out.shape == (8, 1, 44, 44) and out.min() >= 0 and out.max() <= 1
    plain = augment_faces(x, FaceAugmentConfig(rotate_degrees=0, flip=False, erase_p=0),
                          generator=torch.Generator().manual_seed(1))
    windows = {(i, j) for b in range(8) for i in range(5) for j in range(5)
               if torch.equal(plain[b, 0], x[b, 0, i : i + 44, j : j + 44])}
    assert len(windows) >= 2  # each example got its own crop, all inside the image
    again = augment_faces(x, FaceAugmentConfig(), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)


def test_ten_crops():
    x = torch.arange(48 * 48, dtype=torch.float32).reshape(1, 1, 48, 48)
    views = ten_crops(x, 44)
    assert len(views) == 10 and all(v.shape == (1, 1, 44, 44) for v in views)
    torch.testing.assert_close(views[5], views[0].flip(-1))
    assert views[4][0, 0, 0, 0] == x[0, 0, 2, 2]


def test_camera_augmentation_stays_in_range_and_changes_the_faces():
    x = torch.rand(32, 1, 48, 48)
    camera = FaceAugmentConfig(rotate_degrees=0, flip=False, erase_p=0, photometric=0.3, lowres_p=1.0, noise_p=1.0)
    plain = FaceAugmentConfig(rotate_degrees=0, flip=False, erase_p=0)
    out = augment_faces(x, camera, generator=torch.Generator().manual_seed(0))
    same = augment_faces(x, plain, generator=torch.Generator().manual_seed(0))
    assert out.shape == same.shape == (32, 1, 44, 44) and out.min() >= 0 and out.max() <= 1
    assert (out - same).abs().mean() > 0.01
    torch.testing.assert_close(out, augment_faces(x, camera, generator=torch.Generator().manual_seed(0)))


def test_cutmix_mixes_targets_by_the_pasted_area():
    from emofuse.training.augment import cutmix
    from emofuse.training.face_augment import mix_faces

    x = torch.zeros(16, 1, 44, 44)
    x[8:] = 1.0
    y = torch.nn.functional.one_hot(torch.tensor([0] * 8 + [1] * 8), 2).float()
    mixed, soft = cutmix(x, y, alpha=1.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(16))
    # The share of pixels that changed is exactly the share of the target moved to the partner.
    changed = (mixed != x).flatten(1).float().mean(dim=1)
    moved = 1 - soft[torch.arange(16), torch.tensor([0] * 8 + [1] * 8)]
    partner_differs = changed > 0
    torch.testing.assert_close(changed[partner_differs], moved[partner_differs])
    off = FaceAugmentConfig()
    same_x, same_y = mix_faces(x, y, off, generator=torch.Generator().manual_seed(0))
    assert same_x is x and same_y is y
