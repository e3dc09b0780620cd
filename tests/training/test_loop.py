import json

import numpy as np
import pytest
import torch
from torch import nn

from emofuse.training.config import TrainConfig
from emofuse.training.loop import ConfigError, fit


class TinyNet(nn.Module):
    def __init__(self, n_features: int = 6, n_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, n_classes))

    def forward(self, x, lengths=None):
        return self.body(x)


def collate(batch):
    x = torch.from_numpy(np.stack([b[0] for b in batch]))
    return x, None, torch.tensor([b[1] for b in batch])


def blobs(n: int, seed: int, *, noise: float = 0.3):
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 6, dtype=np.float32) * 2
    y = rng.integers(0, 3, n)
    x = (centres[y] + noise * rng.standard_normal((n, 6))).astype(np.float32)
    return list(zip(x, y.tolist(), strict=True)), y


class PretrainedTinyNet(TinyNet):
    """TinyNet as if its first layer were a pretrained body and its last a new head."""

    def parameter_groups(self):
        return {"backbone": list(self.body[0].parameters()), "head": list(self.body[2].parameters())}


def _fit(tmp_path, config, *, train=None, module=None, net_cls=TinyNet, **kwargs):
    (train_set, y), (val_set, yv) = train or (blobs(96, 0), blobs(48, 1))
    torch.manual_seed(123)  # same initial weights in every call
    module = module or net_cls()
    result = fit(module, train_set, val_set, train_targets=y, val_targets=yv, n_classes=3, config=config,
                 collate=collate, progress=False, **kwargs)
    return module, result


def test_learns_a_separable_problem_and_logs_every_epoch(tmp_path):
    log = tmp_path / "log.jsonl"
    _, result = _fit(tmp_path, TrainConfig(epochs=8, batch_size=16, lr=1e-2), log_path=log)
    assert result.best_val_ua > 0.9
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, 9))
    assert {"train_loss", "val_loss", "val_ua", "lr", "seconds"} <= set(lines[0])
    assert {r["epoch_limit"] for r in lines} == {8}  # what `study --plan` estimates time left from
    assert result.device.startswith("cpu")


def test_early_stopping_on_an_unlearnable_problem(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y, yv = rng.integers(0, 3, 64), rng.integers(0, 3, 32)
    train = (list(zip(x, y.tolist(), strict=True)), y)
    val = (list(zip(x[:32], yv.tolist(), strict=True)), yv)
    _, result = _fit(tmp_path, TrainConfig(epochs=40, batch_size=16, patience=3), train=(train, val))
    assert result.epochs_run < 40
    assert result.epochs_run - result.best_epoch <= 3


class Interrupt(Exception):
    pass


FINE_TUNING = TrainConfig(epochs=6, batch_size=16, lr=0.2, schedule="cosine", optimizer="sgd", warmup_epochs=1.5,
                          backbone_lr_scale=0.1, ema_decay=0.9)


@pytest.mark.parametrize(("config", "net_cls"), [
    (TrainConfig(epochs=6, batch_size=16, lr=1e-2, schedule="cosine"), TinyNet),
    (FINE_TUNING, PretrainedTinyNet),  # optimizer groups, warm-up schedule and the weight average resume too
])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, config, net_cls):
    straight, straight_result = _fit(tmp_path, config, state_dir=tmp_path / "a", net_cls=net_cls)

    (train_set, y), val = blobs(96, 0), blobs(48, 1)
    calls = {"n": 0}

    class Flaky(list):
        def __getitem__(self, i):
            calls["n"] += 1
            if calls["n"] > 3 * len(train_set) + 5:  # dies a little into epoch 4
                raise Interrupt
            return list.__getitem__(self, i)

    with pytest.raises(Interrupt):
        _fit(tmp_path, config, train=((Flaky(train_set), y), val), state_dir=tmp_path / "b", net_cls=net_cls)
    assert json.loads((tmp_path / "b" / "last.json").read_text())["epoch"] == 3
    resumed, resumed_result = _fit(tmp_path, config, train=((train_set, y), val), state_dir=tmp_path / "b",
                                   net_cls=net_cls)
    assert [r["epoch"] for r in resumed_result.history] == list(range(1, 7))
    np.testing.assert_allclose([r["train_loss"] for r in resumed_result.history],
                               [r["train_loss"] for r in straight_result.history], rtol=1e-5)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_fine_tuning_options(tmp_path):
    log = tmp_path / "log.jsonl"
    _, result = _fit(tmp_path, FINE_TUNING, net_cls=PretrainedTinyNet, log_path=log)
    assert result.best_val_ua > 0.9
    lrs = [json.loads(line)["lr"] for line in log.read_text().splitlines()]
    # The logged rate is the first group's: the body's, at a tenth of the peak; warm-up, then cosine down.
    assert max(lrs) <= 0.02 + 1e-9 and lrs[1] == max(lrs) and lrs[-1] < lrs[1] / 5


def test_weight_average_is_what_is_kept(tmp_path):
    from emofuse.training.optim import ema_decay_at, update_ema

    average, live = TinyNet(), TinyNet()
    before = [p.detach().clone() for p in average.parameters()]
    update_ema(average, live, decay=0.75)
    for a, b, p in zip(average.parameters(), before, live.parameters(), strict=True):
        torch.testing.assert_close(a, 0.75 * b + 0.25 * p)
    assert ema_decay_at(0, 0.999) == 0.1 and ema_decay_at(10**6, 0.999) == 0.999
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-2, ema_decay=0.5, patience=3)
    module, _ = _fit(tmp_path, config, state_dir=tmp_path / "s")
    plain, _ = _fit(tmp_path, TrainConfig(epochs=3, batch_size=16, lr=1e-2, patience=3))
    assert any(not torch.equal(a, b) for a, b in zip(module.state_dict().values(), plain.state_dict().values(),
                                                     strict=True))


def test_config_is_strict_and_checked():
    for bad in ({"optimizer": "lamb"}, {"ema_decay": 1.0}, {"backbone_lr_scale": 0}, {"warmup_epochs": -1}):
        with pytest.raises(ConfigError):
            TrainConfig.from_dict(bad)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="epochz"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="linear")


class _Draws:
    """A dataset whose items are draws from its own generator, like the random crops of the voice nets."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(0)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> float:
        return float(self.rng.random())


def _per_batch_draws(worker_init_fn, *, seed: int = 0) -> list[float]:
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)  # the loader's base seed comes from the training process's generator
    loader = DataLoader(_Draws(4), batch_size=1, num_workers=2, worker_init_fn=worker_init_fn)
    return [float(b) for b in loader]  # batch k comes from worker k % 2


def test_every_data_loading_worker_draws_its_own_random_stream():
    from emofuse.training.loop import reseed_worker

    # Without reseeding, the two workers' copies of one generator draw the same numbers in lockstep.
    plain = _per_batch_draws(None)
    assert plain[0] == plain[1] and plain[2] == plain[3]
    reseeded = _per_batch_draws(reseed_worker)
    assert len(set(reseeded)) == 4
    assert _per_batch_draws(reseed_worker) == reseeded  # still reproducible from the seed
    assert _per_batch_draws(reseed_worker, seed=1) != reseeded


def test_no_more_loader_workers_than_usable_cores(tmp_path):
    import os
    import warnings

    from emofuse.training.loop import usable_workers

    cores = len(os.sched_getaffinity(0))
    assert usable_workers(0) == 0
    assert usable_workers(1) == 1
    assert usable_workers(cores + 50) == cores
    with warnings.catch_warnings():
        # torch warns "This DataLoader will create N worker processes ..." when asked for more than the cores
        warnings.filterwarnings("error", message=".*worker processes")
        _, result = _fit(tmp_path, TrainConfig(epochs=2, batch_size=16, num_workers=cores + 50))
    assert result.epochs_run == 2
