"""Face augmentation for training: random crops, flips, rotation, erasing, camera effects, cutmix."""

from __future__ import annotations

import torch

from emofuse.training.augment import cutmix
from emofuse.training.face_augment import FaceAugmentConfig, augment_faces, mix_faces


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
