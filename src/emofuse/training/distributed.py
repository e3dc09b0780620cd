"""Multi-process training with PyTorch's own engine: ``torchrun`` starts the processes, this module joins them.

``torchrun --nproc-per-node=N -m emofuse train ...`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` in every process; :func:`init_from_env` reads them and joins the
process group (NCCL on GPUs, gloo on CPU). Without those variables nothing happens and every helper
here answers as the only process of a world of one, so the training loop has a single code path.

What rank 0 alone does (see :mod:`emofuse.training.loop` and :mod:`emofuse.study.experiment`):
writing the run directory, the log, the resumable state and the saved models; showing progress.
"""

from __future__ import annotations

import datetime
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

from emofuse.errors import ConfigError


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True in the process that writes files and shows progress (rank 0, or the only process)."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(backend: str = "auto", *, timeout_minutes: float = 30.0) -> bool:
    """Join the process group ``torchrun`` describes in the environment; returns whether one was joined.

    ``backend="auto"`` is NCCL when CUDA is available, else gloo. On GPUs each process takes the
    device ``cuda:LOCAL_RANK``. On CPU the cores are shared out between the processes of a node
    (``torchrun`` sets ``OMP_NUM_THREADS=1`` unless it is set; an explicit value is respected).
    """
    if is_distributed() or not launched_by_torchrun():
        return is_distributed()
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ConfigError(f"distributed backend must be 'auto', 'nccl' or 'gloo', not {backend!r}")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return True


def shutdown() -> None:
    if is_distributed():
        # Free unreachable DistributedDataParallel wrappers now: their reducers hold the process group,
        # which would otherwise outlive destroy_process_group and be torn down with the interpreter.
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def process_group(backend: str = "auto") -> Iterator[bool]:
    """``with process_group():`` joins the group when launched by torchrun and leaves it on the way out."""
    joined = init_from_env(backend)
    try:
        yield joined
    except BaseException:
        if joined:  # no barrier: the other processes may never reach it; torchrun stops them
            dist.destroy_process_group()
        raise
    if joined:
        shutdown()


def default_device() -> torch.device:
    """The device ``device="auto"`` means in this process: its own GPU under torchrun, else cuda or cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank()) if is_distributed() else torch.device("cuda")
    return torch.device("cpu")


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of ``tensor`` summed element-wise over ranks (``tensor`` itself without a process group).
    Stays on its device: no host round trip."""
    if not is_distributed():
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a list of one without a process group)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
