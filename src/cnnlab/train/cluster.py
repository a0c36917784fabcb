"""Where a process sits in a SLURM job, for ``srun cnnlab train ...`` without torchrun.

srun starts one process per task and tells each its place in ``SLURM_PROCID``
(rank), ``SLURM_LOCALID`` (rank on its node) and ``SLURM_NTASKS`` (world size).
torchrun's ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` win when present. The
rendezvous address, in order: ``MASTER_ADDR`` if set, else
``SLURM_LAUNCH_NODE_IPADDR`` (the node srun ran on), else the first host of
``SLURM_JOB_NODELIST``/``SLURM_NODELIST``; the port: ``MASTER_PORT`` if set,
else one derived from ``SLURM_JOB_ID`` (every task computes the same one,
15000..24999).

Example:
    >>> first_host("gpu[07-09,12],cpu01")
    'gpu07'
    >>> env = slurm_env({"SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NTASKS": "2",
    ...                  "SLURM_NODELIST": "node[3-4]", "SLURM_JOB_ID": "42"})
    >>> env["RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"], env["MASTER_PORT"]
    ('1', '2', 'node3', '15042')
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def first_host(nodelist: str) -> str:
    """The first host name of a SLURM node list such as ``a[01-03,7],b``."""
    m = re.match(r"\s*([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not m:
        return nodelist.strip()
    prefix, ranges = m.group(1), m.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def slurm_env(env: Mapping[str, str]) -> dict[str, str] | None:
    """torchrun-style variables for a process srun started, or None when not under srun
    (or when torchrun's variables are already there)."""
    if "WORLD_SIZE" in env or "SLURM_PROCID" not in env or "SLURM_NTASKS" not in env:
        return None
    out = {"RANK": env["SLURM_PROCID"], "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
           "WORLD_SIZE": env["SLURM_NTASKS"]}
    nodes = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    addr = (env.get("MASTER_ADDR") or env.get("SLURM_LAUNCH_NODE_IPADDR")
            or (first_host(nodes) if nodes else None) or "127.0.0.1")
    job = env.get("SLURM_JOB_ID", "0")
    port = env.get("MASTER_PORT") or str(15000 + int(job) % 10000 if job.isdigit() else 15000)
    out.update(MASTER_ADDR=addr, MASTER_PORT=port)
    return out
