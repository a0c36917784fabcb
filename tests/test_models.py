"""The model zoo: registry, every model's forward/backward, parameter counts, init, scratch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.cli import main
from cnnlab.errors import ConfigError
from cnnlab.models import create_model, get_model_info, list_models, min_input_size, to_scratch
from cnnlab.models.resnet import ResidualBlock, ResNeXtBlock, ResNeXtBottleneck

# The book's training defaults (d2l 7.6, 8.1-8.8): input side and learning rate.
BOOK = {
    "lenet": (28, 0.1), "lenet-modern": (28, 0.1), "lenet-bn": (28, 0.1),
    "alexnet": (224, 0.01), "vgg11": (224, 0.01), "vgg11-narrow": (224, 0.01),
    "nin": (224, 0.05), "googlenet": (96, 0.01), "resnet18": (96, 0.01),
    "resnet34": (96, 0.01), "resnext18": (96, 0.05), "densenet": (96, 0.01),
    "regnetx32": (96, 0.05),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Many small convolutions: on a shared 2-core machine two intra-op threads spin
    # against other processes and run up to 10x slower than one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Every registered model (other issues register more, e.g. fastnet); VGG-11 at 224 costs
# 7.5 GMACs per image, so its shapes are checked on the meta device instead.
REAL = [n for n in list_models() if n != "vgg11"]


def conv_p(c_in, c_out, k, groups=1, bias=True):
    return c_out * (c_in // groups) * k * k + (c_out if bias else 0)


def linear_p(n_in, n_out):
    return n_in * n_out + n_out


def bn_p(c):
    return 2 * c


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def small_side(name):
    """A cheap input side the model accepts: its book side for LeNet, else at least 16."""
    book = get_model_info(name).input_size
    return book if book <= 28 else max(16, min_input_size(name))


def test_registry_has_every_model_with_book_defaults():
    assert set(BOOK) <= set(list_models())
    for name, (side, lr) in BOOK.items():
        info = get_model_info(name)
        assert (info.name, info.input_size, info.lr) == (name, side, lr)
        assert (info.epochs, info.batch_size) == (10, 128)
        assert info.description


def test_list_models_pattern_and_unknown_name():
    assert list_models("resnet*") == ["resnet18", "resnet34"]
    assert list_models("lenet-?odern") == ["lenet-modern"]
    with pytest.raises(ConfigError, match="resnet18") as e:
        create_model("resnet-18")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="unknown model"):
        get_model_info("no-such-thing")


@pytest.mark.parametrize("name", REAL)
def test_forward_at_book_size(name):
    torch.manual_seed(0)
    side = get_model_info(name).input_size
    net = create_model(name)
    with torch.no_grad():
        Y_hat = net(torch.rand(2, 1, side, side))
    assert Y_hat.shape == (2, 10)
    assert torch.isfinite(Y_hat).all()


@pytest.mark.parametrize("name", REAL)
def test_backward_gives_finite_gradients_to_every_parameter(name):
    torch.manual_seed(0)
    side = small_side(name)
    net = create_model(name, input_size=side)
    X, y = torch.rand(2, 1, side, side), torch.tensor([0, 3])
    Y_hat = net(X)
    assert Y_hat.shape == (2, 10) and torch.isfinite(Y_hat).all()
    nn.functional.cross_entropy(Y_hat, y).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", REAL)
def test_three_channels_and_other_class_counts(name):
    side = small_side(name)
    net = create_model(name, num_classes=7, in_channels=3, input_size=side).eval()
    with torch.no_grad():
        Y_hat = net(torch.rand(2, 3, side, side))
    assert Y_hat.shape == (2, 7) and torch.isfinite(Y_hat).all()


def test_book_parameter_counts():
    assert n_params(create_model("lenet")) == 61_706
    assert n_params(create_model("resnet18")) == 11_178_378
    with torch.device("meta"):
        assert n_params(create_model("vgg11")) == 128_806_154


def test_parameter_counts_by_hand():
    lenet = (conv_p(1, 6, 5) + conv_p(6, 16, 5) + linear_p(16 * 5 * 5, 120)
             + linear_p(120, 84) + linear_p(84, 10))
    assert n_params(create_model("lenet-modern")) == lenet
    # BNLeNet: no padding, so 28 -> 24 -> 12 -> 8 -> 4; BN after each conv/linear
    lenet_bn = (conv_p(1, 6, 5) + bn_p(6) + conv_p(6, 16, 5) + bn_p(16)
                + linear_p(16 * 4 * 4, 120) + bn_p(120) + linear_p(120, 84) + bn_p(84)
                + linear_p(84, 10))
    assert n_params(create_model("lenet-bn")) == lenet_bn

    def nin_block(c_in, c_out, k):
        return conv_p(c_in, c_out, k) + 2 * conv_p(c_out, c_out, 1)

    nin = nin_block(1, 96, 11) + nin_block(96, 256, 5) + nin_block(256, 384, 3) + nin_block(
        384, 10, 3)
    assert n_params(create_model("nin")) == nin

    narrow = (conv_p(1, 16, 3) + conv_p(16, 32, 3) + conv_p(32, 64, 3) + conv_p(64, 64, 3)
              + conv_p(64, 128, 3) + 3 * conv_p(128, 128, 3)
              + linear_p(128 * 7 * 7, 4096) + linear_p(4096, 4096) + linear_p(4096, 10))
    with torch.device("meta"):
        assert n_params(create_model("vgg11-narrow")) == narrow
        # AlexNet: 256 x 5 x 5 features at 224
        alexnet = (conv_p(1, 96, 11) + conv_p(96, 256, 5) + conv_p(256, 384, 3)
                   + conv_p(384, 384, 3) + conv_p(384, 256, 3) + linear_p(6400, 4096)
                   + linear_p(4096, 4096) + linear_p(4096, 10))
        assert n_params(create_model("alexnet")) == alexnet


def resnext_block_p(c_in, c, groups, use_1x1conv):
    p = conv_p(c_in, c, 1) + conv_p(c, c, 3, groups) + conv_p(c, c, 1) + 3 * bn_p(c)
    return p + (conv_p(c_in, c, 1) + bn_p(c) if use_1x1conv else 0)


def test_resnext_parameter_counts_by_hand():
    blk = ResNeXtBottleneck(64, 128, groups=16, bot_mul=1, use_1x1conv=True, strides=2)
    assert n_params(blk) == resnext_block_p(64, 128, 16, True)
    total = conv_p(1, 64, 7) + bn_p(64) + linear_p(512, 10)
    c_in = 64
    for c in (64, 128, 256, 512):
        total += resnext_block_p(c_in, c, 16, c_in != c) + resnext_block_p(c, c, 16, False)
        c_in = c
    assert n_params(create_model("resnext18")) == total


def test_book_blocks_shapes_and_resnext_groups():
    X = torch.rand(4, 3, 6, 6)
    assert ResidualBlock(3, 3)(X).shape == (4, 3, 6, 6)
    assert ResidualBlock(3, 6, use_1x1conv=True, strides=2)(X).shape == (4, 6, 3, 3)
    # the book's ResNeXtBlock(32, 16, 1): `groups` is the group width -> 32 // 16 = 2 groups
    blk = ResNeXtBlock(32, 32, 16, 1)
    assert blk(torch.rand(4, 32, 96, 96)).shape == (4, 32, 96, 96)
    assert (blk.conv2.groups, blk.num_groups, blk.group_width) == (2, 2, 16)
    down = ResNeXtBlock(32, 64, 16, 0.5, use_1x1conv=True, strides=2)
    assert down(torch.rand(2, 32, 8, 8)).shape == (2, 64, 4, 4)
    assert down.conv2.groups == 32 // 16
    assert ResNeXtBottleneck(32, 32, 16, 1).conv2.groups == 16  # number of groups
    regnet = create_model("regnetx32")
    assert regnet.stage2[0].conv2.groups == 80 // 16
    with pytest.raises(ConfigError, match="groups"):
        ResNeXtBottleneck(32, 32, 5, 1)
    with pytest.raises(ConfigError, match="use_1x1conv"):
        ResidualBlock(3, 6)


def test_init_really_happens():
    torch.manual_seed(0)
    net = create_model("resnet18")
    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.weight
            fan_in = w.shape[1] * w[0, 0].numel()
            fan_out = w.shape[0] * w[0, 0].numel()
            bound = math.sqrt(6 / (fan_in + fan_out))  # Xavier-uniform (Glorot & Bengio 2010)
            assert w.abs().max() <= bound + 1e-7, name
            if w.numel() >= 1000:  # PyTorch's default bound 1/sqrt(fan_in) is smaller
                assert w.abs().max() > 0.95 * bound, name
            assert m.bias is None or not m.bias.any(), name
        elif isinstance(m, nn.BatchNorm2d):
            assert (m.weight == 1).all() and not m.bias.any(), name
    lenet = create_model("lenet")
    assert not lenet.fc3.bias.any()  # nn.Linear's default bias is non-zero


def test_model_kwargs_and_bad_options():
    net = create_model("resnet18", arch=[[1, 64], [1, 128]])  # as TrainConfig.extra holds it
    assert [n for n, _ in net.named_children()] == ["stem", "stage1", "stage2", "head"]
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    vgg = create_model("vgg11-narrow", arch=((1, 8), (1, 16)), input_size=28)
    assert vgg(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ConfigError, match="arch"):
        create_model("nin", arch=((1, 2),))
    with pytest.raises(ConfigError, match="num_classes"):
        create_model("lenet", num_classes=0)
    with pytest.raises(ConfigError, match="lenet: .*colour"):
        create_model("lenet", colour=1)
    with pytest.raises(ConfigError, match="colour"):
        min_input_size("resnet18", colour=1)


def test_too_small_or_mismatched_inputs_give_one_line_fixes():
    assert min_input_size("alexnet") == 65  # 11x11/4 conv, three 3x3/2 pools
    assert min_input_size("lenet") == 12
    # Python callers read the parameter names (the CLI rewrites them into its flags)
    with pytest.raises(ConfigError,
                       match=r"at least 65x65, got 28x28; use the book's 224x224 \(input_size=224"):
        create_model("alexnet", input_size=28)
    with pytest.raises(ConfigError, match=r"at least 65x65.*\(resize=224\)") as info:
        create_model("alexnet")(torch.rand(1, 1, 28, 28))
    assert "--" not in str(info.value)
    with pytest.raises(ConfigError, match=r"built for 28x28 inputs, got 32x32.*input_size=32"):
        create_model("lenet")(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize("name", ["alexnet", "densenet", "lenet-bn", "nin", "vgg11-narrow"])
def test_min_input_size_is_the_smallest_that_runs(name):
    side = min_input_size(name)
    fixed = BOOK[name][0] in (28, 224) and name != "nin"
    with torch.device("meta"):  # shapes only
        net = create_model(name, input_size=side).eval()
    assert net(torch.zeros(1, 1, side, side, device="meta")).shape == (1, 10)
    if fixed:
        with pytest.raises(ConfigError, match=f"at least {side}x{side}"):
            create_model(name, input_size=side - 1)
    else:
        with pytest.raises(ConfigError, match=f"at least {side}x{side}, got {side - 1}x"):
            net(torch.zeros(1, 1, side - 1, side - 1, device="meta"))


# convolutions, average and max pools, a padded max pool (ResNet's stem), BN
@pytest.mark.parametrize("name,side", [("lenet", 28), ("lenet-modern", 28), ("resnet18", 16),
                                       ("densenet", 32)])
def test_scratch_build_matches_and_state_dicts_load_both_ways(name, side):
    pytest.importorskip("cnnlab.layers")
    torch.manual_seed(0)
    ref = create_model(name).eval()
    torch.manual_seed(1)
    scratch = create_model(name, scratch=True).eval()
    kinds = {type(m).__name__ for m in scratch.modules()}
    assert "ScratchConv2d" in kinds and "Conv2d" not in kinds and "MaxPool2d" not in kinds
    assert "AvgPool2d" not in kinds
    assert list(scratch.state_dict()) == list(ref.state_dict())
    scratch.load_state_dict(ref.state_dict())
    X = torch.rand(2, 1, side, side)
    with torch.no_grad():
        assert torch.allclose(scratch(X), ref(X), atol=1e-4)
    other = create_model(name).eval()
    other.load_state_dict(scratch.state_dict())
    with torch.no_grad():
        assert torch.allclose(other(X), ref(X), atol=1e-4)


def test_to_scratch_keeps_weights_and_training_mode():
    pytest.importorskip("cnnlab.layers")
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.MaxPool2d(3, 1, 1, 2),
                        nn.Conv2d(4, 4, 3, stride=2, bias=False), nn.AvgPool2d(2, padding=1))
    X = torch.rand(1, 2, 12, 12)
    want = net(X)
    to_scratch(net)
    assert type(net[0]).__name__ == "ScratchConv2d" and net.training
    assert net[2].bias is None and list(net.state_dict()) == ["0.weight", "0.bias", "2.weight"]
    assert torch.allclose(net(X), want, atol=1e-5)
    with pytest.raises(ConfigError, match="ceil_mode"):
        to_scratch(nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)))


def test_cli_models_lists_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert name in out
    assert "61,706" in out and "11,178,378" in out and "224x224" in out
    assert main(["models", "resnet*"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["resnet18", "resnet34"]
    assert main(["models", "zzz*"]) == 2
    assert "no model matches" in capsys.readouterr().err
