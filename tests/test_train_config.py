"""resolve_config precedence, resume config checks, schedules, CLI flag tracking."""

from __future__ import annotations

import sys
import types

import pytest

from cnnlab.errors import ConfigError
from cnnlab.models import get_model_info
from cnnlab.train import TrainConfig
from cnnlab.train.resolve import config_for_resume, resolve_config
from cnnlab.train.schedules import lr_factor


@pytest.fixture
def fake_recipes(monkeypatch):
    mod = types.ModuleType("cnnlab.train.recipes")
    table = {"fast": {"optimizer": "momentum", "lr": 0.05, "epochs": 3, "precision": "bf16"},
             "big": {"model": "resnet18", "schedule": "cosine"}}

    def get_recipe(name):
        if name not in table:
            raise ConfigError(f"unknown recipe {name!r}")
        return dict(table[name])

    mod.RECIPES, mod.get_recipe = table, get_recipe
    monkeypatch.setitem(sys.modules, "cnnlab.train.recipes", mod)
    return table


@pytest.mark.parametrize("model", ["lenet", "vgg11-narrow", "resnet18"])
def test_book_defaults_come_from_the_registry(model):
    info = get_model_info(model)
    cfg = resolve_config(TrainConfig(model=model))
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.resize) == (
        info.epochs, info.batch_size, info.lr, info.input_size)
    assert cfg.optimizer == "sgd" and cfg.schedule == "constant"


def test_explicit_values_win_over_book_defaults():
    cfg = resolve_config(TrainConfig(model="resnet18", lr=0.3, epochs=2, resize=64))
    assert (cfg.lr, cfg.epochs, cfg.resize, cfg.batch_size) == (0.3, 2, 64, 128)


def test_recipe_overrides_defaults_and_user_overrides_recipe(fake_recipes):
    cfg = resolve_config(TrainConfig(model="lenet", recipe="fast"))
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.precision) == ("momentum", 0.05, 3, "bf16")
    # the CLI says which fields were typed: an explicit value equal to the default still wins
    cfg = resolve_config(TrainConfig(model="lenet", recipe="fast", optimizer="sgd", lr=0.2),
                         explicit={"model", "recipe", "optimizer", "lr"})
    assert (cfg.optimizer, cfg.lr, cfg.epochs) == ("sgd", 0.2, 3)


def test_recipe_may_choose_the_model_and_its_defaults(fake_recipes):
    cfg = resolve_config(TrainConfig(recipe="big"), explicit={"recipe"})
    assert cfg.model == "resnet18" and cfg.schedule == "cosine" and cfg.resize == 96


def test_unknown_recipe_is_a_config_error(fake_recipes):
    with pytest.raises(ConfigError, match="unknown recipe"):
        resolve_config(TrainConfig(model="lenet", recipe="nope"))


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "lenett"}, "unknown model"),
    ({"model": "lenet", "resize": 4}, "at least"),
    ({"model": "lenet", "lr": -1.0}, "lr must be"),
    ({"model": "lenet", "optimizer": "rmsprop"}, "optimizer must be"),
])
def test_bad_configs_raise_one_line_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as info:
        resolve_config(TrainConfig(**kwargs))
    assert "\n" not in str(info.value)


def test_resume_keeps_the_checkpoint_config_and_allows_more_epochs():
    saved = resolve_config(TrainConfig(model="lenet", epochs=2, lr=0.05)).to_dict()
    cfg = config_for_resume(saved, TrainConfig(model="lenet", epochs=5), {"model", "epochs"})
    assert (cfg.epochs, cfg.lr) == (5, 0.05)
    with pytest.raises(ConfigError, match="drop lr="):
        config_for_resume(saved, TrainConfig(model="lenet", lr=0.5), {"model", "lr"})


def test_schedules_warm_up_linearly_then_follow_their_shape():
    const = lr_factor("constant", 100, warmup_steps=4)
    assert [const(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cos = lr_factor("cosine", 100)
    assert cos(0) == 1.0 and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0)
    one = lr_factor("onecycle", 100)
    peak = max(range(100), key=one)
    assert 0 < peak < 50 and one(99) < 0.05 and one(peak) == 1.0


def test_cli_flags_record_which_fields_were_given():
    from cnnlab.cli import build_parser
    from cnnlab.cli.train import config_from_args

    args = build_parser().parse_args(
        ["train", "resnet18", "--lr", "0.2", "--no-normalize", "--augment", "crop+flip",
         "--out", "somewhere"])
    cfg, explicit = config_from_args(args)
    assert explicit == {"model", "lr", "normalize", "augment", "out_dir"}
    assert (cfg.lr, cfg.normalize, cfg.augment, cfg.out_dir) == (
        0.2, False, "crop,flip", "somewhere")
    assert cfg.epochs is None  # left for resolve_config to fill from the registry


def test_the_real_recipes_resolve():
    from cnnlab.train.recipes import RECIPES

    for name, overrides in RECIPES.items():
        cfg = resolve_config(TrainConfig(recipe=name, device="cpu"),
                             explicit={"recipe", "device"})
        assert cfg.model == overrides["model"] and cfg.lr == overrides["lr"]
