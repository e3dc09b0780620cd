"""The one training loop for every torch model in emofuse (voice now, face and text later).

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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from emofuse.checkpoint import flatten_state, load_checkpoint, save_checkpoint, unflatten_state
from emofuse.errors import ConfigError, checked_options
from emofuse.evaluation.metrics import compute_metrics
from emofuse.training import distributed

Batch = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]
Collate = Callable[[list[Any]], Batch]
# (x, soft targets (batch, n_classes), generator) -> (x, soft targets): augmentation over a batch.
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TrainConfig:
    """How a torch model is trained. Strict: :meth:`from_dict` rejects unknown keys."""

    epochs: int = 60
    batch_size: int = 32  # the global batch: under torchrun each of N processes takes batch_size / N
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "onecycle"  # "onecycle" or "cosine"
    patience: int = 15  # epochs without a better validation UA before stopping
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # bfloat16 autocast; only ever used on CUDA
    class_balanced: bool = True  # weight the loss by inverse class frequency
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    num_workers: int = 0
    eval_batch_size: int = 64
    optimizer: str = "adamw"  # "adamw", or "sgd" (Nesterov momentum 0.9)
    warmup_epochs: float = 0.0  # linear warm-up before the cosine schedule (onecycle warms up by itself)
    # Learning rate of a pretrained body relative to its new head, for modules with parameter_groups().
    backbone_lr_scale: float = 1.0
    # Exponential moving average of the weights (decay per step); the average is what is validated,
    # kept and returned. 0 turns it off.
    ema_decay: float = 0.0
    channels_last: bool = False  # NHWC memory for 2D convolution nets (faster on CPU: benchmarks/face_speed.py)

    def __post_init__(self) -> None:
        if self.schedule not in ("onecycle", "cosine"):
            raise ConfigError(f"schedule must be 'onecycle' or 'cosine', not {self.schedule!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be 'adamw' or 'sgd', not {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), not {self.ema_decay}")
        if self.warmup_epochs < 0 or self.backbone_lr_scale <= 0:
            raise ConfigError("warmup_epochs must be >= 0 and backbone_lr_scale > 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return cls(**checked_options(cls, d, what="training"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    best_epoch: int
    best_val_ua: float
    epochs_run: int
    seconds: float
    device: str
    history: list[dict[str, float]] = field(default_factory=list)


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


def class_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights, mean 1 over the classes present; absent classes get 0."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def soft_cross_entropy_terms(logits: torch.Tensor, soft_targets: torch.Tensor,
                             weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum of weighted per-sample losses, sum of sample weights)``: the loss is their ratio.

    Apart, so that several processes can divide their own sums by the *global* weight sum.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    per_sample = -(soft_targets * log_probs).sum(dim=-1)  # (batch,)
    if weights is None:
        return per_sample.sum(), torch.tensor(float(len(per_sample)), device=per_sample.device)
    sample_weights = soft_targets @ weights  # (batch,)
    return (per_sample * sample_weights).sum(), sample_weights.sum()


def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against soft targets (mixup, label smoothing), each sample weighted by its target's class weight."""
    total, weight = soft_cross_entropy_terms(logits, soft_targets, weights)
    return total / weight.clamp_min(1e-8)


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


def _make_optimizer(config: TrainConfig, module: nn.Module) -> torch.optim.Optimizer:
    """AdamW or SGD; a module with ``parameter_groups()`` (a pretrained body and a new head) gets its
    body trained at ``backbone_lr_scale`` times the head's rate."""
    groups_of = getattr(module, "parameter_groups", None)
    if callable(groups_of) and config.backbone_lr_scale != 1.0:
        named = groups_of()
        groups = [{"params": named["backbone"], "lr": config.lr * config.backbone_lr_scale},
                  {"params": named["head"], "lr": config.lr}]
    else:
        groups = [{"params": list(module.parameters()), "lr": config.lr}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def _make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int,
                    steps_per_epoch: int) -> Any:
    peaks = [group["lr"] for group in optimizer.param_groups]
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps,
                                                   pct_start=0.15, anneal_strategy="cos")
    if not config.warmup_epochs:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=config.lr * 0.01)
    # Linear warm-up from 1 % of the peak, then cosine down to 1 % of it.
    warmup = min(max(1, round(config.warmup_epochs * steps_per_epoch)), max(1, total_steps - 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _WarmupCosine(warmup, total_steps))


class _WarmupCosine:
    """A picklable schedule factor (``LambdaLR`` leaves callable objects out of its state)."""

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps, self.total_steps = warmup_steps, total_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return 0.01 + 0.99 * step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def update_ema(average: nn.Module, module: nn.Module, *, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * module``, parameters and float buffers (batch-norm
    statistics) alike; integer buffers are copied."""
    for a, p in zip(average.parameters(), module.parameters(), strict=True):
        a.lerp_(p.detach(), 1 - decay)
    for kept, live in zip(average.buffers(), module.buffers(), strict=True):
        if kept.is_floating_point():
            kept.lerp_(live, 1 - decay)
        else:
            kept.copy_(live)


def ema_decay_at(step: int, decay: float) -> float:
    """Early steps average over fewer updates, so the average is not dominated by the initial weights."""
    return min(decay, (1 + step) / (10 + step))


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
    rank, world = distributed.rank(), distributed.world_size()
    is_main = rank == 0
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
    use_amp = config.amp and device.type == "cuda"
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
    sampler: DistributedSampler[Any] = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed,
                                 drop_last=drop_last)
    workers = usable_workers(config.num_workers)
    loader = DataLoader(train_set, batch_size=config.batch_size // world, sampler=sampler, drop_last=drop_last,
                        collate_fn=collate, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0, worker_init_fn=reseed_worker)
    val_shard = Subset(val_set, range(rank, len(val_set), world)) if world > 1 else val_set
    steps_per_epoch = max(1, len(loader))
    optimizer = _make_optimizer(config, module)
    scheduler = _make_scheduler(config, optimizer, config.epochs * steps_per_epoch, steps_per_epoch)
    # The weight average validated and kept instead of the raw weights (``ema_decay``).
    average = copy.deepcopy(module).requires_grad_(False) if config.ema_decay else None
    evaluated = average if average is not None else module
    weights = class_weights(train_targets, n_classes).to(device) if config.class_balanced else None
    val_weights = class_weights(val_targets, n_classes).to(device) if config.class_balanced else None

    start_epoch, best_epoch, best_ua, best_state, bad_epochs = 1, 0, -math.inf, None, 0
    history: list[dict[str, float]] = []
    state_dir = Path(state_dir) if state_dir is not None else None
    if state_dir is not None and (state_dir / "last.json").is_file():
        restored = _load_state(state_dir, module, optimizer, scheduler, augment_generator, average)
        start_epoch, best_epoch, best_ua, best_state, bad_epochs, history = restored
    distributed.barrier()  # every process has read the state before rank 0 writes the next one
    log_file = open(log_path, "a", encoding="utf-8") if log_path is not None and is_main else None  # noqa: SIM115
    try:
        epochs = range(start_epoch, config.epochs + 1)
        for epoch in _epoch_bar(epochs, description=description, enabled=progress and is_main, total=config.epochs,
                                completed=start_epoch - 1, status=lambda: (best_ua, history)):  # noqa: B023 (read after each epoch, on purpose)
            if bad_epochs >= config.patience:
                break
            epoch_start = time.perf_counter()
            sampler.set_epoch(epoch)
            net.train()
            # (loss sum, weight sum) on the device: no host round trip per step, one reduction per epoch
            sums = torch.zeros(2, dtype=torch.float64, device=device)
            for x, lengths, y in loader:
                x = x.to(device, non_blocking=True)
                lengths = lengths.to(device) if lengths is not None else None
                soft = torch.nn.functional.one_hot(y.to(device), n_classes).float()
                if batch_transform is not None:
                    x, soft = batch_transform(x, soft, augment_generator)
                if config.label_smoothing:
                    soft = soft * (1 - config.label_smoothing) + config.label_smoothing / n_classes
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                    logits = net(x, lengths)
                total, weight = soft_cross_entropy_terms(logits, soft, weights)
                # Each process divides by the global weight; DDP averages gradients, hence the * world.
                loss = total / distributed.all_reduce_tensor(weight.detach()).clamp_min(1e-8) * world
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                if average is not None:
                    update_ema(average, module, decay=ema_decay_at(scheduler.last_epoch, config.ema_decay))
                sums += torch.stack([total.detach(), weight.detach()]).double()
            loss_sum, weight_sum = distributed.all_reduce_tensor(sums).tolist()
            _sync_buffers(evaluated)
            val_logits = _predict_sharded(evaluated, val_shard, len(val_set), collate=collate,
                                          batch_size=config.eval_batch_size, device=device, amp=use_amp)
            val_soft = torch.nn.functional.one_hot(torch.from_numpy(val_targets), n_classes).float().to(device)
            val_loss = float(soft_cross_entropy(torch.from_numpy(val_logits).to(device), val_soft, val_weights))
            val = compute_metrics(val_targets, y_pred=val_logits.argmax(axis=1), labels=[str(i) for i in range(n_classes)])
            record = {"epoch": epoch, "train_loss": loss_sum / max(weight_sum, 1e-8), "val_loss": val_loss,
                      "val_ua": val.ua, "val_wa": val.wa, "lr": scheduler.get_last_lr()[0],
                      "seconds": time.perf_counter() - epoch_start, "epoch_limit": config.epochs}
            history.append(record)
            if log_file is not None:
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if val.ua > best_ua:
                best_ua, best_epoch, bad_epochs = val.ua, epoch, 0
                best_state = {k: v.detach().cpu().clone() for k, v in evaluated.state_dict().items()}
            else:
                bad_epochs += 1
            if state_dir is not None:
                _save_state(state_dir, module, optimizer, scheduler, augment_generator, average, epoch=epoch,
                            best_epoch=best_epoch, best_ua=best_ua, best_state=best_state, bad_epochs=bad_epochs,
                            history=history)
    finally:
        if log_file is not None:
            log_file.close()
    if best_state is not None:
        module.load_state_dict(best_state)
    module.cpu()
    if config.channels_last:
        module.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    return FitResult(best_epoch=best_epoch, best_val_ua=float(best_ua), epochs_run=len(history),
                     seconds=sum(r["seconds"] for r in history), device=describe_device(device, world),
                     history=history)


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


def _save_state(state_dir: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
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


def _load_state(state_dir: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
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

