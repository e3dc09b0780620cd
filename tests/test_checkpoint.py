import numpy as np
import pytest
import torch

from emofuse.checkpoint import (
    CheckpointError,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)


def test_round_trip_of_arrays_and_sidecar(tmp_path):
    save_checkpoint(tmp_path, arrays={"w": torch.ones(2, 3), "mean": np.arange(4.0)}, meta={"model": "x", "labels": ["a"]})
    arrays, meta = load_checkpoint(tmp_path)
    np.testing.assert_array_equal(arrays["w"], np.ones((2, 3), np.float32))
    assert meta["model"] == "x" and meta["format_version"] == 1


def test_optimizer_state_survives_flattening():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    arrays: dict = {}
    skeleton = flatten_state("optimizer", opt.state_dict(), arrays)
    import json

    skeleton = json.loads(json.dumps(skeleton))  # what the sidecar really holds
    restored = unflatten_state(skeleton, {k: v.detach().numpy() for k, v in arrays.items()})
    fresh = torch.optim.AdamW(net.parameters(), lr=0.1)
    fresh.load_state_dict(restored)
    for a, b in zip(opt.state_dict()["state"].values(), fresh.state_dict()["state"].values(), strict=True):
        for key in a:
            torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]))


def test_missing_or_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"no model\.json"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, arrays={"w": np.zeros(3)}, meta={"model": "x"})
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_checkpoint(tmp_path)
    with pytest.raises(TypeError, match="cannot store"):
        flatten_state("x", {"f": object()}, {})
