"""The one training loop for every torch model in emofuse (voice, face, words).

Read it top to bottom: seed, data loaders, class-balanced loss, AdamW with a one-cycle or cosine
schedule, mixed precision on CUDA, per-epoch validation on held-out *speakers*, early stopping on
validation UA, a JSON-lines log, and a resumable training state written after every epoch.

The same loop runs in one process or in N under ``torchrun`` (:mod:`emofuse.training.distributed`):
``batch_size`` is the *global* batch, split evenly over the processes; a ``DistributedSampler`` with
``set_epoch`` deals every epoch's shuffle, identical to the one-process shuffle, so global batch k
holds the same samples whatever the number of processes; the loss is normalised by the global sum
of sample weights, so DistributedDataParallel's gradient average equals the one-process gradient;
validation is sharded over the processes and gathered, so every process takes the same
early-stopping decision; rank 0 alone writes the log and the resumable state.

The loop knows nothing about audio or images. It gets a module whose ``forward(x, lengths)`` returns
logits ``(batch, n_classes)``, datasets yielding ``(features, target)``, a ``collate`` that turns a
list of those into ``(x, lengths or None, targets)``, and an optional ``batch_transform`` for
augmentation that needs the whole batch (SpecAugment, mixup).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from emofuse.errors import ConfigError
from emofuse.evaluation.metrics import compute_metrics
from emofuse.training import distributed
from emofuse.training.config import FitResult, TrainConfig
from emofuse.training.optim import (
    class_weights,
    ema_decay_at,
    make_optimizer,
    make_scheduler,
    soft_cross_entropy,
    soft_cross_entropy_terms,
    update_ema,
)
from emofuse.training.state import load_state, save_state

Batch = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]
Collate = Callable[[list[Any]], Batch]
# (x, soft targets (batch, n_classes), generator) -> (x, soft targets): augmentation over a batch.
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def resolve_device(name: str) -> torch.device:
    """``auto`` is this process's GPU (``cuda:LOCAL_RANK`` under torchrun) when there is one, else the CPU."""
    if name == "auto":
        return distributed.default_device()
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA device is available")
    if device.type == "cuda" and device.index is None and distributed.is_distributed():
        device = torch.device("cuda", distributed.local_rank())
    return device


def describe_device(device: torch.device, world: int = 1) -> str:
    what = (f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
            else f"cpu ({torch.get_num_threads()} threads)")
    return what if world == 1 else f"{world} processes × {what}"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def predict_logits(module: nn.Module, dataset: Any, *, collate: Collate, batch_size: int,
                   device: torch.device, amp: bool = False) -> np.ndarray:
    """Logits ``(len(dataset), n_classes)`` in dataset order."""
    module.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    outputs = []
    for x, lengths, _ in loader:
        x = x.to(device, non_blocking=True)
        lengths = lengths.to(device) if lengths is not None else None
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            outputs.append(module(x, lengths).float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), np.float32)


def usable_workers(asked: int) -> int:
    """Data-loading processes: ``asked``, but no more than the CPUs this process may run on.

    A GPU recipe asks for several; on a 2-core machine more workers than cores only compete for
    them, and torch warns about it on every epoch. Datasets that draw random crops or waveform
    augmentations draw them per worker (:func:`reseed_worker`), so the number of workers used is
    part of what a run's random stream depends on, as the seed is.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(asked, cpus)  # a negative number still reaches DataLoader's own error


def reseed_worker(worker_id: int) -> None:
    """``worker_init_fn``: each data-loading worker reseeds the dataset's own generators (``reseed``).

    Every worker starts from a copy of the dataset, generator states included, so without this the
    workers would draw the same crops and augmentations in lockstep (batch k and batch k + 1 alike).
    The worker's seed is torch's: the loader's base seed (from the seeded training process) plus
    ``worker_id``, so runs stay reproducible.
    """
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    if info is not None and callable(reseed := getattr(info.dataset, "reseed", None)):
        reseed(int(info.seed) % 2**32)


@dataclass
class _Run:
    """What one call of :func:`fit` holds: the network (and its DDP wrapper), the data, the
    optimiser and schedule, the weight average, and the best epoch so far."""

    module: nn.Module
    net: nn.Module  # the module, or its DistributedDataParallel wrapper
    device: torch.device
    use_amp: bool
    world: int
    sampler: Any
    loader: DataLoader[Any]
    val_shard: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    average: nn.Module | None  # the weight average validated and kept instead of the raw weights (``ema_decay``)
    weights: torch.Tensor | None
    val_weights: torch.Tensor | None
    augment_generator: torch.Generator
    start_epoch: int = 1
    best_epoch: int = 0
    best_ua: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def evaluated(self) -> nn.Module:
        return self.average if self.average is not None else self.module

    def keep_if_best(self, epoch: int, ua: float) -> None:
        if ua > self.best_ua:
            self.best_ua, self.best_epoch, self.bad_epochs = ua, epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.evaluated.state_dict().items()}
        else:
            self.bad_epochs += 1


def fit(
    module: nn.Module,
    train_set: Any,  # a map-style dataset: __len__ and __getitem__ -> (features, target)
    val_set: Any,
    *,
    train_targets: np.ndarray,
    val_targets: np.ndarray,
    n_classes: int,
    config: TrainConfig,
    collate: Collate,
    batch_transform: BatchTransform | None = None,
    log_path: str | Path | None = None,
    state_dir: str | Path | None = None,
    progress: bool = True,
    description: str = "training",
) -> FitResult:
    """Train ``module`` in place; on return it holds the weights of the best validation epoch.

    With ``state_dir``, the full training state is saved after every epoch and an interrupted
    run continues from its last finished epoch when called again with the same arguments.
    Under ``torchrun`` every process calls this with the same arguments (see the module docstring).
    """
    run = _prepare(module, train_set, val_set, train_targets=train_targets, val_targets=val_targets,
                   n_classes=n_classes, config=config, collate=collate)
    state_dir = Path(state_dir) if state_dir is not None else None
    if state_dir is not None and (state_dir / "last.json").is_file():
        restored = load_state(state_dir, run.module, run.optimizer, run.scheduler, run.augment_generator, run.average)
        run.start_epoch, run.best_epoch, run.best_ua, run.best_state, run.bad_epochs, run.history = restored
    distributed.barrier()  # every process has read the state before rank 0 writes the next one
    is_main = distributed.rank() == 0
    log_file = open(log_path, "a", encoding="utf-8") if log_path is not None and is_main else None  # noqa: SIM115
    try:
        epochs = range(run.start_epoch, config.epochs + 1)
        for epoch in _epoch_bar(epochs, description=description, enabled=progress and is_main, total=config.epochs,
                                completed=run.start_epoch - 1, status=lambda: (run.best_ua, run.history)):
            if run.bad_epochs >= config.patience:
                break
            epoch_start = time.perf_counter()
            train_loss = _train_epoch(run, epoch, config=config, n_classes=n_classes, batch_transform=batch_transform)
            val_loss, val = _validate(run, val_set, val_targets, config=config, n_classes=n_classes, collate=collate)
            record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                      "val_ua": val.ua, "val_wa": val.wa, "lr": run.scheduler.get_last_lr()[0],
                      "seconds": time.perf_counter() - epoch_start, "epoch_limit": config.epochs}
            _end_epoch(run, record, log_file=log_file, state_dir=state_dir)
    finally:
        if log_file is not None:
            log_file.close()
    module = run.module
    if run.best_state is not None:
        module.load_state_dict(run.best_state)
    module.cpu()
    if config.channels_last:
        module.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return FitResult(best_epoch=run.best_epoch, best_val_ua=float(run.best_ua), epochs_run=len(run.history),
                     seconds=sum(r["seconds"] for r in run.history), device=describe_device(run.device, run.world),
                     history=run.history)


def _end_epoch(run: _Run, record: dict[str, Any], *, log_file: Any, state_dir: Path | None) -> None:
    """The epoch's record logged, the best weights kept if it is the best, the resumable state saved."""
    run.history.append(record)
    if log_file is not None:
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
    run.keep_if_best(int(record["epoch"]), float(record["val_ua"]))
    if state_dir is not None:
        save_state(state_dir, run.module, run.optimizer, run.scheduler, run.augment_generator, run.average,
                   epoch=int(record["epoch"]), best_epoch=run.best_epoch, best_ua=run.best_ua,
                   best_state=run.best_state, bad_epochs=run.bad_epochs, history=run.history)


def _prepare(module: nn.Module, train_set: Any, val_set: Any, *, train_targets: np.ndarray, val_targets: np.ndarray,
             n_classes: int, config: TrainConfig, collate: Collate) -> _Run:
    """Device, DDP wrapper, sampler and loader, optimiser and schedule, weight average: a fresh run."""
    rank, world = distributed.rank(), distributed.world_size()
    if config.batch_size % world:
        raise ConfigError(f"batch_size {config.batch_size} is the global batch; it must divide evenly over "
                          f"{world} processes")
    if len(train_set) < world:
        raise ConfigError(f"{len(train_set)} training samples cannot be shared out over {world} processes")
    seed_everything(config.seed)  # the same initial state in every process (DDP also broadcasts rank 0's weights)
    device = resolve_device(config.device)
    module.to(device)
    if config.channels_last:
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    net: nn.Module = module
    if world > 1:
        if device.type == "cuda":
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)  # batch statistics over the global batch
        net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
        torch.manual_seed(config.seed + 7919 * rank)  # dropout differs between processes, as between batches
    augment_generator = torch.Generator(device=device).manual_seed(config.seed + 1 + 7919 * rank)
    # Epoch e's shuffle is torch.randperm(n) seeded by seed + e whatever the number of processes; process r
    # takes every world-th index, so the processes' batches k together are the one-process global batch k.
    drop_last = len(train_set) > config.batch_size
    sampler: DistributedSampler[Any] = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True,
                                                          seed=config.seed, drop_last=drop_last)
    workers = usable_workers(config.num_workers)
    loader = DataLoader(train_set, batch_size=config.batch_size // world, sampler=sampler, drop_last=drop_last,
                        collate_fn=collate, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0, worker_init_fn=reseed_worker)
    steps_per_epoch = max(1, len(loader))
    optimizer = make_optimizer(config, module)
    scheduler = make_scheduler(config, optimizer, config.epochs * steps_per_epoch, steps_per_epoch)
    return _Run(
        module=module, net=net, device=device, use_amp=config.amp and device.type == "cuda", world=world,
        sampler=sampler, loader=loader,
        val_shard=Subset(val_set, range(rank, len(val_set), world)) if world > 1 else val_set,
        optimizer=optimizer, scheduler=scheduler,
        average=copy.deepcopy(module).requires_grad_(False) if config.ema_decay else None,
        weights=class_weights(train_targets, n_classes).to(device) if config.class_balanced else None,
        val_weights=class_weights(val_targets, n_classes).to(device) if config.class_balanced else None,
        augment_generator=augment_generator)


def _train_epoch(run: _Run, epoch: int, *, config: TrainConfig, n_classes: int,
                 batch_transform: BatchTransform | None) -> float:
    """One pass over the training data; the epoch's mean training loss (over every process)."""
    device, world = run.device, run.world
    run.sampler.set_epoch(epoch)
    run.net.train()
    # (loss sum, weight sum) on the device: no host round trip per step, one reduction per epoch
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    for x, lengths, y in run.loader:
        x = x.to(device, non_blocking=True)
        lengths = lengths.to(device) if lengths is not None else None
        soft = torch.nn.functional.one_hot(y.to(device), n_classes).float()
        if batch_transform is not None:
            x, soft = batch_transform(x, soft, run.augment_generator)
        if config.label_smoothing:
            soft = soft * (1 - config.label_smoothing) + config.label_smoothing / n_classes
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=run.use_amp):
            logits = run.net(x, lengths)
        total, weight = soft_cross_entropy_terms(logits, soft, run.weights)
        # Each process divides by the global weight; DDP averages gradients, hence the * world.
        loss = total / distributed.all_reduce_tensor(weight.detach()).clamp_min(1e-8) * world
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(run.module.parameters(), config.grad_clip)
        run.optimizer.step()
        run.scheduler.step()
        if run.average is not None:
            update_ema(run.average, run.module, decay=ema_decay_at(run.scheduler.last_epoch, config.ema_decay))
        sums += torch.stack([total.detach(), weight.detach()]).double()
    loss_sum, weight_sum = distributed.all_reduce_tensor(sums).tolist()
    return loss_sum / max(weight_sum, 1e-8)


def _validate(run: _Run, val_set: Any, val_targets: np.ndarray, *, config: TrainConfig, n_classes: int,
              collate: Collate) -> tuple[float, Any]:
    """Validation loss and metrics of the model that is kept (the weight average when there is one)."""
    evaluated = run.evaluated
    _sync_buffers(evaluated)
    val_logits = _predict_sharded(evaluated, run.val_shard, len(val_set), collate=collate,
                                  batch_size=config.eval_batch_size, device=run.device, amp=run.use_amp)
    val_soft = torch.nn.functional.one_hot(torch.from_numpy(val_targets), n_classes).float().to(run.device)
    val_loss = float(soft_cross_entropy(torch.from_numpy(val_logits).to(run.device), val_soft, run.val_weights))
    metrics = compute_metrics(val_targets, y_pred=val_logits.argmax(axis=1), labels=[str(i) for i in range(n_classes)])
    return val_loss, metrics


def _sync_buffers(module: nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) everywhere, so every process validates the same model."""
    if distributed.is_distributed():
        for buffer in module.buffers():
            torch.distributed.broadcast(buffer, src=0)


def _predict_sharded(module: nn.Module, shard: Any, n: int, *, collate: Collate, batch_size: int,
                     device: torch.device, amp: bool) -> np.ndarray:
    """Logits for the whole validation set: each process scores samples rank, rank + world, ...; gathered."""
    logits = predict_logits(module, shard, collate=collate, batch_size=batch_size, device=device, amp=amp)
    parts = distributed.all_gather_objects(logits)
    if len(parts) == 1:
        return parts[0]
    out = np.zeros((n, max(p.shape[1] for p in parts)), np.float32)
    for r, part in enumerate(parts):
        if len(part):
            out[r::len(parts)] = part
    return out


def _epoch_bar(epochs: range, *, description: str, enabled: bool, total: int, completed: int,
               status: Callable[[], tuple[float, list[dict[str, float]]]]) -> Any:
    if not enabled:
        yield from epochs
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=total, completed=completed, info="")
        for epoch in epochs:
            yield epoch
            best, history = status()
            last = history[-1] if history else {}
            info = f"val UA {last.get('val_ua', float('nan')):.3f} (best {best:.3f})" if last else ""
            bar.update(task, advance=1, info=info)
