"""cnnlab.train.startup: an eager run never imports torch._dynamo, a compiling one gets
torch's own optimizer functions back, and the eager optimizer computes the same numbers.

Each check runs in a fresh interpreter: the test process may have imported
torch._dynamo already, and then the stand-ins are (rightly) never put in place.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _python(code: str, tmp_path: Path, **env: str) -> str:
    e = dict(os.environ, MPLBACKEND="Agg", **env)
    e["PYTHONPATH"] = SRC + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                       cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r.stdout


TRAIN_THEN_COMPILE = r"""
import sys
import torch
from cnnlab.cli import main
from torch.optim import optimizer as om

rc = main(["train", "lenet", "--epochs", "1", "--dataset", "synthetic", "--num-train", "128",
           "--batch-size", "64", "--limit-val-batches", "1", "--out", "run", "--num-threads", "1"])
assert rc == 0, rc
print("after training:", "torch._dynamo" in sys.modules)

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
net = torch.compile(model, backend="eager")
@torch.compile(backend="eager")
def step():
    opt.step()
x = torch.randn(8, 1, 4, 4)
for _ in range(2):
    opt.zero_grad()
    net(x).square().mean().backward()
    step()
print("after compile:", "torch._dynamo" in sys.modules)
use_grad = om._use_grad_for_differentiable(lambda self: None).__code__
print("step is torch's:", torch.optim.SGD.step.__wrapped__.__code__ is use_grad)
# zero_grad ran after the compile: torch's disabled function is cached; the others
# have not run since, and are as torch left them before their first call
cached = [getattr(getattr(om.Optimizer, name).__wrapped__, "__dynamo_disable", None)
          for name in ("zero_grad", "add_param_group", "state_dict", "load_state_dict")]
print("zero_grad is torch's:", getattr(cached[0], "_torchdynamo_disable", False))
print("others untouched:", cached[1:] == [None, None, None])
"""


@pytest.mark.slow
def test_eager_run_skips_dynamo_and_compile_gets_torch_back(tmp_path):
    out = _python(TRAIN_THEN_COMPILE, tmp_path)
    assert "after training: False" in out, out
    assert "after compile: True" in out, out
    assert "step is torch's: True" in out, out
    assert "zero_grad is torch's: True" in out, out
    assert "others untouched: True" in out, out


SGD_STEPS = r"""
import sys
import torch
from cnnlab.train.startup import defer_dynamo

n = defer_dynamo()
torch.manual_seed(0)
w = torch.nn.Parameter(torch.randn(5))
for opt in (torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True),
            torch.optim.AdamW([w], lr=0.01)):
    for _ in range(3):
        opt.zero_grad()
        (w.sin() * torch.arange(5.0)).sum().backward()
        opt.step()
    opt.load_state_dict(opt.state_dict())
print("deferred:", n)
print("dynamo:", "torch._dynamo" in sys.modules)
print("w:", w.detach().tolist())

import torch._dynamo  # directly, not through torch.compile: torch's functions are back
from torch.optim import optimizer as om

use_grad = om._use_grad_for_differentiable(lambda self: None).__code__
steps = [torch.optim.SGD.step.__wrapped__, torch.optim.AdamW.step.__wrapped__]
print("restored:", all(f.__code__ is use_grad for f in steps)
      and all(type(getattr(f.__wrapped__, "__dynamo_disable", None)).__name__ != "_Deferred"
              for f in (om.Optimizer.zero_grad, om.Optimizer.state_dict)))
"""


def test_deferred_optimizer_same_numbers_and_off_switch(tmp_path):
    on = _python(SGD_STEPS, tmp_path).splitlines()
    off = _python(SGD_STEPS, tmp_path, CNNLAB_LAZY_DYNAMO="0").splitlines()
    assert on[0] != "deferred: 0" and on[1] == "dynamo: False", on
    assert off[0] == "deferred: 0" and off[1] == "dynamo: True", off
    assert on[2] == off[2]  # bit for bit: printed as Python floats
    assert on[3] == off[3] == "restored: True", (on, off)


def test_a_checkpoint_of_unstandardised_data_skips_the_pixel_statistics(monkeypatch):
    # The statistics are a pass over every training pixel, made on first use; a run that
    # does not standardise (the book's LeNet) has no use for them at its last checkpoint.
    from cnnlab.data import datamodule
    from cnnlab.data.datamodule import DataModule
    from cnnlab.train.steps import normalization_of

    passes = []
    real = datamodule.pixel_mean_std
    monkeypatch.setattr(datamodule, "pixel_mean_std",
                        lambda images: passes.append(1) or real(images))
    plain = DataModule("synthetic", num_train=64, num_val=16)
    assert normalization_of(plain) is None and passes == []
    standardised = DataModule("synthetic", num_train=64, num_val=16, normalize=True)
    got = normalization_of(standardised)
    assert got == {"mean": [standardised.mean], "std": [standardised.std]} and passes
