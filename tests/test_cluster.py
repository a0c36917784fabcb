"""Clusters: ranks from SLURM's variables (srun without torchrun) and a two-node torchrun
(c10d rendezvous on localhost); every rank ends with the same weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from cnnlab.train.cluster import first_host, slurm_env
from cnnlab.train.distributed import DistContext

SCRIPT = textwrap.dedent("""
    import sys, torch
    from cnnlab.train import Trainer, TrainConfig
    from cnnlab.train.distributed import unwrap
    cfg = TrainConfig(model="lenet-modern", dataset="synthetic", num_train=256, batch_size=16,
                      epochs=1, limit_val_batches=1, num_threads=1, optimizer="momentum",
                      lr=0.05, device="cpu")
    t = Trainer(cfg, save=False)
    t.fit()
    torch.save({"world": t.dist.world_size, "model": unwrap(t.model).state_dict()},
               f"{sys.argv[1]}/rank{t.dist.rank}.pt")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    drop = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SLURM_")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _check_ranks(tmp_path, procs) -> None:
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a["world"] == b["world"] == 2
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_slurm_variables_give_rank_and_world_size():
    env = {"SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NTASKS": "4",
           "SLURM_JOB_NODELIST": "gpu-[12-13]", "SLURM_JOB_ID": "123"}
    ctx = DistContext.from_env(env)
    assert (ctx.rank, ctx.local_rank, ctx.world_size) == (3, 1, 4)
    assert ctx.rendezvous["MASTER_ADDR"] == "gpu-12"
    assert ctx.rendezvous["MASTER_PORT"] == "15123"
    # the launch node's address beats the node list; an explicit MASTER_* beats both
    assert slurm_env({**env, "SLURM_LAUNCH_NODE_IPADDR": "10.0.0.5"})["MASTER_ADDR"] == \
        "10.0.0.5"
    assert slurm_env({**env, "MASTER_ADDR": "h", "MASTER_PORT": "1"})["MASTER_PORT"] == "1"
    # torchrun's variables win; no SLURM task: one process
    ctx = DistContext.from_env({**env, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})
    assert (ctx.rank, ctx.world_size, ctx.rendezvous) == (0, 2, None)
    assert DistContext.from_env({"SLURM_JOB_ID": "5"}).world_size == 1
    assert first_host("a1,b2") == "a1" and first_host("n[001-004]") == "n001"


@pytest.mark.slow
def test_two_srun_tasks_without_torchrun_train_in_step(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {**_env(), "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank),
               "SLURM_NTASKS": "2", "SLURM_JOB_ID": "77", "SLURM_NODELIST": "localhost",
               "SLURM_LAUNCH_NODE_IPADDR": "127.0.0.1", "MASTER_PORT": port}
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    _check_ranks(tmp_path, procs)


# Seen once in ~20 runs (a CI run on 2026-12-01): a worker aborted inside torch
# ("terminate called without an active exception", SIGABRT), a C++ thread torn down
# while joinable. Such a launch is tried once more, with a new endpoint; any other
# failure, or that one twice, fails the test.
_TORCH_ABORT = "terminate called without an active exception"


def _launch_two_nodes(out) -> list[subprocess.Popen]:
    out.mkdir()
    script = out / "train.py"
    script.write_text(SCRIPT)
    endpoint = f"127.0.0.1:{_free_port()}"
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2",
               "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}",
               "--rdzv_id=cnnlab-test", f"--node_rank={node}", str(script), str(out)]
        procs.append(subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


@pytest.mark.slow
def test_two_node_torchrun_c10d_rendezvous(tmp_path):
    procs = _launch_two_nodes(tmp_path / "first")
    errs = [p.communicate(timeout=240)[1] for p in procs]
    if any(p.returncode != 0 for p in procs):
        assert any(_TORCH_ABORT in e for e in errs), errs[0][-3000:] + errs[1][-3000:]
        procs = _launch_two_nodes(tmp_path / "second")
        _check_ranks(tmp_path / "second", procs)
    else:
        _check_ranks(tmp_path / "first", procs)
