"""``precision="auto"``: bf16 where the hardware has bf16 arithmetic, else fp32 or fp16."""

from __future__ import annotations

import pytest
import torch

from cnnlab.cli import build_parser
from cnnlab.cli.train import config_from_args
from cnnlab.train import TrainConfig, steps
from cnnlab.train.recipes import RECIPES
from cnnlab.train.trainer import Trainer


@pytest.mark.parametrize("has_bf16, wanted", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_what_the_cpu_reports(monkeypatch, has_bf16, wanted):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: has_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert steps.cpu_has_bf16() is has_bf16
    got, note = steps.effective_precision("auto", torch.device("cpu"))
    assert got == wanted and note.startswith(f"auto: {wanted}")
    cfg = TrainConfig(model="lenet", dataset="synthetic", precision="auto", epochs=1,
                      batch_size=8, num_train=16, limit_val_batches=1, device="cpu")
    trainer = Trainer(cfg, save=False)
    history = trainer.fit()
    assert trainer.precision == wanted and len(history) == 1
    assert f"{wanted} on cpu" in trainer._banner() and "auto:" in trainer._banner()


def test_auto_without_the_probes_is_fp32(monkeypatch):
    # a torch without the private probes (or one that fails) must not break a run
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported",
                        lambda: (_ for _ in ()).throw(RuntimeError("no cpuinfo")))
    assert steps.cpu_has_bf16() is False


@pytest.mark.parametrize("capability, wanted", [((7, 5), "fp16"), ((9, 0), "bf16")])
def test_auto_on_gpus(monkeypatch, capability, wanted):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert steps.effective_precision("auto", torch.device("cuda", 0))[0] == wanted


def test_cli_takes_auto_and_the_cpu_recipes_use_it():
    args = build_parser().parse_args(["train", "lenet", "--precision", "auto"])
    assert config_from_args(args)[0].precision == "auto"
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="bf17").validate()
    cpu = [name for name, r in RECIPES.items() if r.get("device") == "cpu"]
    assert cpu and all(RECIPES[name]["precision"] == "auto" for name in cpu)
