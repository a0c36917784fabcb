"""cnnlab.train.recipes and the fastnet family: recipes resolve to valid, runnable configs."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.train.config import TrainConfig
from cnnlab.train.recipes import RECIPES, get_recipe

FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def test_recipe_names_and_fields():
    assert {"fast-cpu", "fast-cpu-93", "fast-gpu"} <= set(RECIPES)
    for name, overrides in RECIPES.items():
        assert set(overrides) <= FIELDS, name
        assert "model" in overrides, name
        TrainConfig(**overrides).validate()


def test_get_recipe_returns_a_copy():
    r = get_recipe("fast-cpu")
    r["epochs"] = 999
    assert get_recipe("fast-cpu")["epochs"] != 999


def test_unknown_recipe_lists_known_names():
    with pytest.raises(ConfigError, match="fast-cpu") as e:
        get_recipe("fastest")
    assert "fastest" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipes_resolve_to_valid_configs(name):
    resolve = pytest.importorskip("cnnlab.train.resolve")
    cfg = resolve.resolve_config(TrainConfig(recipe=name))
    for field, value in get_recipe(name).items():
        assert getattr(cfg, field) == value, field
    assert cfg.recipe == name
    # what the user sets wins over the recipe
    cfg = resolve.resolve_config(TrainConfig(recipe=name, epochs=1, lr=0.05))
    assert (cfg.epochs, cfg.lr) == (1, 0.05)


def test_gpu_recipe_uses_the_gpu_paths():
    r = get_recipe("fast-gpu")
    assert (r["precision"], r["channels_last"], r["compile"], r["device"]) == \
        ("bf16", True, True, "cuda")
    assert r["model"] == "resnet18" and r["resize"] <= 96


def test_cpu_recipes_stay_on_cpu_at_native_size():
    for name in ("fast-cpu", "fast-cpu-93"):
        r = get_recipe(name)
        assert r["device"] == "cpu" and r["resize"] == 28
        # bf16 only where the CPU has bf16 arithmetic (steps.effective_precision)
        assert r["precision"] == "auto"


def test_fastnet_models_train_one_step():
    models = pytest.importorskip("cnnlab.models")
    X = torch.rand(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.arange(8) % 10
    for name in ("fastnet", "fastnet-wide"):
        net = models.create_model(name).to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        before = [p.detach().clone() for p in net.parameters()]
        loss = torch.nn.functional.cross_entropy(net(X), y)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
        assert all(not torch.equal(a, b) for a, b in zip(before, net.parameters())), name


def test_fastnet_options_and_accelerate_keep_state_dict():
    models = pytest.importorskip("cnnlab.models")
    from cnnlab.accel import accelerated

    net = models.create_model("fastnet", num_classes=5, in_channels=3, widths=(8, 16, 32),
                              residual=(0, 1))
    assert net(torch.zeros(2, 3, 28, 28)).shape == (2, 5)
    keys = list(net.state_dict())
    with accelerated(net, "cpu"):
        assert list(net.state_dict()) == keys
        assert net(torch.zeros(2, 3, 28, 28)).shape == (2, 5)


def test_cli_recipe_flag_trains_fastnet(tmp_path):
    cli = pytest.importorskip("cnnlab.cli")
    rc = cli.main(["train", "fastnet", "--recipe", "fast-cpu", "--dataset", "synthetic",
                   "--epochs", "1", "--num-train", "64", "--batch-size", "32",
                   "--limit-val-batches", "1", "--out", str(tmp_path / "run")])
    assert rc in (0, None)
    saved = (tmp_path / "run" / "config.json").read_text()
    assert '"recipe": "fast-cpu"' in saved and '"tta": true' in saved


def test_python_user_setting_a_default_value_beats_the_recipe():
    """TrainConfig(recipe=..., label_smoothing=0.0): 0.0 is TrainConfig's default, but the
    user gave it, so the recipe's 0.1 must not replace it (as the CLI already does)."""
    from cnnlab.train.resolve import resolve_config

    assert get_recipe("fast-cpu")["label_smoothing"] == 0.1
    given = TrainConfig(recipe="fast-cpu", label_smoothing=0.0, tta=False)
    resolved = resolve_config(given)
    assert (resolved.label_smoothing, resolved.tta) == (0.0, False)
    assert resolved.model == "fastnet" and resolved.epochs == 2  # the rest is the recipe's

    later = TrainConfig(recipe="fast-cpu")
    assert resolve_config(later).label_smoothing == 0.1
    later.label_smoothing = 0.0  # assigned after construction: also the user's choice
    assert resolve_config(later).label_smoothing == 0.0

    # copies (every field passed) give nothing: the recipe still fills the defaults
    copied = dataclasses.replace(TrainConfig(recipe="fast-cpu"), epochs=3)
    assert copied.given_fields == frozenset()
    assert (resolve_config(copied).label_smoothing, resolve_config(copied).epochs) == (0.1, 3)
    assert TrainConfig.from_dict(given.to_dict()) == given  # equality ignores what was given
    twin = copy.copy(later)
    twin.lr = 0.5  # the copy's choice, not the original's
    assert "lr" in twin.given_fields and "lr" not in later.given_fields
