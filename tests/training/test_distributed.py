"""Two CPU processes (gloo) train exactly like one process with the same global batch and seed.

Tolerance: 1e-5 on every epoch's validation loss and on the final weights, identical validation UA.
The only differences left are float summation order in the gradient all-reduce. The models here have
no dropout and no batch norm: those draw different random numbers / batch statistics per process by
design (on GPUs batch norm becomes SyncBatchNorm).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from emofuse.training import distributed
from emofuse.training.config import TrainConfig
from emofuse.training.loop import fit
from tests.training.test_loop import TinyNet, collate

CONFIG = TrainConfig(epochs=5, batch_size=16, lr=1e-2, schedule="onecycle", patience=50)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _imbalanced(n: int, seed: int):
    """Class 0 three times as common as the others, so the class-weighted loss is exercised."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=[0.6, 0.2, 0.2])
    x = (np.eye(3, 6, dtype=np.float32)[y] * 1.5 + 0.8 * rng.standard_normal((n, 6))).astype(np.float32)
    return list(zip(x, y.tolist(), strict=True)), y


class Interrupt(Exception):
    pass


class Flaky(list):
    """Raises once, a little into epoch 4 (each of 2 processes reads 48 samples per epoch)."""

    def __init__(self, items, *, after: int) -> None:
        super().__init__(items)
        self.calls, self.after, self.armed = 0, after, True

    def __getitem__(self, i):
        self.calls += 1
        if self.armed and self.calls > self.after:
            self.armed = False
            raise Interrupt
        return list.__getitem__(self, i)


def _train(out: Path, *, state_dir: Path | None = None, flaky_after: int | None = None) -> dict:
    (train_set, y), (val_set, yv) = _imbalanced(100, 0), _imbalanced(41, 1)  # 41: shards of 21 and 20
    torch.manual_seed(123)
    module = TinyNet()
    kwargs = dict(train_targets=y, val_targets=yv, n_classes=3, config=CONFIG, collate=collate, progress=False,
                  log_path=out / "log.jsonl", state_dir=state_dir)
    if flaky_after is not None:
        with pytest.raises(Interrupt):
            fit(module, Flaky(train_set, after=flaky_after), val_set, **kwargs)
    result = fit(module, train_set, val_set, **kwargs)
    weights = torch.cat([p.detach().flatten() for p in module.parameters()]).tolist()
    return {"history": result.history, "weights": weights, "best_epoch": result.best_epoch}


def _worker(rank: int, world: int, port: int, out: str, resume: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    state = Path(out) / "state" if resume else None
    result = _train(Path(out), state_dir=state, flaky_after=3 * 48 + 5 if resume else None)
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result))
    distributed.shutdown()  # a barrier first: no process leaves while another still talks to it
    # Leave without the interpreter's teardown: gloo's C++ threads destroyed there have aborted a
    # process (SIGABRT, "terminate called without an active exception") after its work was done and
    # written, once in CI. What this test checks is the training, which is on disk by now. An exception
    # above still ends the process the ordinary way, so start_processes reports it.
    os._exit(0)


def _two_processes(out: Path, *, resume: bool = False) -> list[dict]:
    out.mkdir()
    mp.start_processes(_worker, args=(2, _free_port(), str(out), resume), nprocs=2, start_method="spawn")
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def _assert_same_training(a: dict, b: dict) -> None:
    assert [r["epoch"] for r in a["history"]] == [r["epoch"] for r in b["history"]]
    for ra, rb in zip(a["history"], b["history"], strict=True):
        assert ra["val_ua"] == rb["val_ua"]
        assert ra["val_loss"] == pytest.approx(rb["val_loss"], abs=1e-5)
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=1e-5)
    np.testing.assert_allclose(a["weights"], b["weights"], atol=1e-5)
    assert a["best_epoch"] == b["best_epoch"]


def test_two_gloo_processes_train_like_one(tmp_path):
    single = _train(tmp_path)
    ranks = _two_processes(tmp_path / "ddp")
    _assert_same_training(ranks[0], single)
    assert ranks[0]["weights"] == ranks[1]["weights"]  # DDP keeps the replicas identical
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in rank["history"]] for rank in ranks]
    assert untimed[0] == untimed[1]  # every process saw the same gathered validation
    log = (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()
    assert len(log) == CONFIG.epochs  # rank 0 alone wrote the log


def test_resume_under_two_processes_equals_an_uninterrupted_run(tmp_path):
    single = _train(tmp_path)
    ranks = _two_processes(tmp_path / "ddp", resume=True)
    _assert_same_training(ranks[0], single)
    state = json.loads((tmp_path / "ddp" / "state" / "last.json").read_text())
    assert state["world_size"] == 2 and state["epoch"] == CONFIG.epochs


def test_without_a_process_group_everything_is_one_process():
    assert not distributed.is_distributed() and not distributed.launched_by_torchrun()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.all_reduce_tensor(torch.tensor([1.5, 2.0])).tolist() == [1.5, 2.0]
    assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]
    with distributed.process_group() as joined:
        assert not joined


def _emofuse_train(args: list[str], *, processes: int) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "emofuse"] if processes == 1 else
                [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                 "-m", "emofuse"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, "train", *args], capture_output=True, text=True, env=env, timeout=600)


def test_emofuse_train_under_torchrun_matches_one_process(ravdess_dir, tmp_path):
    config = tmp_path / "gru.yaml"
    config.write_text(yaml.safe_dump({"arch_params": {"dropout": 0.0, "hidden": 16, "layers": 1},
                                      "train": {"epochs": 3, "batch_size": 16, "lr": 3e-3}}))
    common = ["voice_gru", "--data", f"ravdess={ravdess_dir}", "--protocol", "ravdess-6fold", "--folds", "fold1",
              "--config", str(config), "--quiet"]
    one = _emofuse_train([*common, "--out", str(tmp_path / "one")], processes=1)
    assert one.returncode == 0, one.stderr
    two = _emofuse_train([*common, "--out", str(tmp_path / "two")], processes=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("UA") == one.stdout.count("UA") >= 1  # only rank 0 printed the result

    def fold(run: str) -> tuple[list[dict], dict]:
        d = tmp_path / run / "folds" / "fold1"
        return ([json.loads(line) for line in (d / "log.jsonl").read_text().splitlines()],
                json.loads((d / "metrics.json").read_text()))

    (log1, metrics1), (log2, metrics2) = fold("one"), fold("two")
    assert len(log1) == len(log2) == 3
    for r1, r2 in zip(log1, log2, strict=True):
        assert r1["val_ua"] == r2["val_ua"]
        assert r1["val_loss"] == pytest.approx(r2["val_loss"], abs=1e-4)
    assert metrics1["ua"] == pytest.approx(metrics2["ua"], abs=1e-9)
    assert metrics2["device"].startswith("2 processes")
    assert not (tmp_path / "two" / "folds" / "fold1" / "state").exists()
