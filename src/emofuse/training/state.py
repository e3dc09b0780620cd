"""The loop's resumable state: everything an interrupted :func:`emofuse.training.loop.fit` needs to
continue where it stopped (weights, best epoch, optimiser, schedule, weight average, every random
state), one safetensors file + JSON per run, written by rank 0 after each epoch."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emofuse.checkpoint import flatten_state, load_checkpoint, save_checkpoint, unflatten_state
from emofuse.errors import ConfigError
from emofuse.training import distributed


def save_state(state_dir: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                augment_generator: torch.Generator, average: nn.Module | None, *, epoch: int, best_epoch: int, best_ua: float,
                best_state: dict[str, torch.Tensor] | None, bad_epochs: int,
                history: list[dict[str, float]]) -> None:
    """Rank 0 writes; every process contributes its own random state (dropout, augmentation)."""
    per_rank = distributed.all_gather_objects((torch.get_rng_state(), augment_generator.get_state()))
    if not distributed.is_main():
        return
    arrays: dict[str, Any] = {}
    meta = {
        "epoch": epoch,
        "best_epoch": best_epoch,
        "best_ua": best_ua,
        "bad_epochs": bad_epochs,
        "history": history,
        "model": flatten_state("model", module.state_dict(), arrays),
        "best": flatten_state("best", best_state, arrays),
        "average": flatten_state("average", average.state_dict() if average is not None else None, arrays),
        "optimizer": flatten_state("optimizer", optimizer.state_dict(), arrays),
        "scheduler": flatten_state("scheduler", _plain(scheduler.state_dict()), arrays),
        "world_size": len(per_rank),
        "rng": flatten_state("rng", {
            "torch": torch.stack([torch_state for torch_state, _ in per_rank]),  # (world, state bytes)
            "augment": torch.stack([augment_state for _, augment_state in per_rank]),
            "numpy": np.random.get_state()[1],  # type: ignore[index]
            "numpy_pos": int(np.random.get_state()[2]),  # type: ignore[index]
            "python": json.dumps(random.getstate()),
        }, arrays),
    }
    save_checkpoint(state_dir, arrays=arrays, meta=meta, stem="last")


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    # OneCycleLR keeps a reference to its annealing function; it is rebuilt by the constructor.
    return {k: v for k, v in state.items() if not callable(v)}


def load_state(state_dir: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                augment_generator: torch.Generator, average: nn.Module | None) -> tuple[Any, ...]:
    arrays, meta = load_checkpoint(state_dir, stem="last")
    if meta.get("world_size", 1) != distributed.world_size():
        raise ConfigError(f"{state_dir} was saved by {meta.get('world_size', 1)} process(es); resume it with the "
                          f"same number (this run has {distributed.world_size()})")
    module.load_state_dict(unflatten_state(meta["model"], arrays))
    if average is not None:
        saved_average = unflatten_state(meta.get("average"), arrays) if meta.get("average") is not None else None
        average.load_state_dict(saved_average if saved_average is not None else module.state_dict())
    optimizer.load_state_dict(unflatten_state(meta["optimizer"], arrays))
    scheduler.load_state_dict(unflatten_state(meta["scheduler"], arrays))
    rng = unflatten_state(meta["rng"], arrays)
    rank = distributed.rank()
    torch_states, augment_states = rng["torch"], rng["augment"]
    if torch_states.dim() == 2:  # (world, state bytes); one state in states saved before multi-process training
        torch_states, augment_states = torch_states[rank], augment_states[rank]
    torch.set_rng_state(torch_states.clone())
    augment_generator.set_state(augment_states.clone())
    np.random.set_state(("MT19937", np.asarray(rng["numpy"], dtype=np.uint32), rng["numpy_pos"], 0, 0.0))
    python_state = json.loads(rng["python"])
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    best = unflatten_state(meta["best"], arrays)
    return meta["epoch"] + 1, meta["best_epoch"], meta["best_ua"], best, meta["bad_epochs"], list(meta["history"])
