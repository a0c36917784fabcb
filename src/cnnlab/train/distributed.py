"""Data-parallel training under ``torchrun``: process group set-up and metric reduction.

``torchrun --nproc_per_node=N -m cnnlab train ...`` starts N processes with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment. Each process
trains a DistributedDataParallel replica on its shard of every epoch; the
gradients are averaged (all-reduce) after each backward pass. gloo on CPU,
NCCL on CUDA.

Example:
    >>> ctx = DistContext.from_env({})
    >>> ctx.world_size, ctx.rank, ctx.is_main
    (1, 0, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from cnnlab.errors import ConfigError


@dataclass
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    started: bool = False  # True when this object initialised the process group
    rendezvous: dict | None = None  # MASTER_ADDR/PORT, RANK...: srun without torchrun

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DistContext:
        env = os.environ if env is None else env
        from cnnlab.train.cluster import slurm_env

        slurm = slurm_env(env)  # srun without torchrun: SLURM_PROCID, SLURM_NTASKS, ...
        if slurm is not None:
            env = {**env, **slurm}
        try:
            world_size = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise ConfigError("WORLD_SIZE/RANK/LOCAL_RANK must be integers; "
                              "launch with torchrun --nproc_per_node=N") from None
        return cls(rank=rank, local_rank=local_rank, world_size=world_size, rendezvous=slurm)

    def start(self, device: torch.device) -> None:
        """Join the process group (gloo on CPU, nccl on CUDA) when world_size > 1."""
        if not self.enabled or not torch.distributed.is_available():
            return
        if torch.distributed.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)  # one GPU per process, before NCCL starts
        for key, value in (self.rendezvous or {}).items():  # env:// reads them there
            os.environ.setdefault(key, value)
        torch.distributed.init_process_group(backend=backend)
        self.started = True

    def stop(self) -> None:
        if self.started and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.started = False

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over every rank (in place; returned for chaining)."""
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
        if not (self.enabled and torch.distributed.is_initialized()):
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.barrier()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP and torch.compile wrappers (whose state_dict we save)."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        else:
            return model
