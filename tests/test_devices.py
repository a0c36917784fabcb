"""GPU code paths checked on a CPU-only machine.

- viz on data that lives on a GPU: a tensor subclass that behaves as CUDA tensors do
  towards CPU tensors (mixing them raises; ``.cpu()`` brings them back);
- ``--device cuda`` / ``auto`` without a usable GPU: one clear line, exit 2;
- augmentation draws its random numbers on the device: the ``meta`` device stands in
  for a GPU and a dispatch mode counts host-to-device copies per batch.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from cnnlab import viz
from cnnlab.cli import main
from cnnlab.data import DataModule


# ----------------------------------------------------------------- data on a "GPU"
def _is_cpu(target) -> bool:
    try:
        return torch.device(target).type == "cpu"
    except (RuntimeError, TypeError):
        return False


class OnGPU(torch.Tensor):
    """A CPU tensor that acts like a CUDA one: an op mixing it with a CPU tensor (other than
    a 0-dim one, which CUDA ops accept as a scalar) raises CUDA's device-mismatch error;
    ``.cpu()`` and ``.to("cpu")`` return an ordinary tensor."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.cpu or (func is torch.Tensor.to and any(
                _is_cpu(a) for a in (*args[1:], kwargs.get("device")) if a is not None)):
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs).as_subclass(torch.Tensor)
        leaves = tree_leaves((args, kwargs))
        if any(isinstance(a, cls) for a in leaves) and any(
                type(a) is torch.Tensor and a.dim() > 0 for a in leaves):
            raise RuntimeError("Expected all tensors to be on the same device, but found at "
                               "least two devices, cuda:0 and cpu!")
        return super().__torch_function__(func, types, args, kwargs)


def test_the_stand_in_fails_like_cuda():
    a, b = torch.ones(3).as_subclass(OnGPU), torch.ones(3)
    with pytest.raises(RuntimeError, match="same device"):
        a + b
    assert type(a + torch.tensor(1.0)) is OnGPU  # a 0-dim CPU tensor is a scalar
    assert type(a.cpu() + b) is torch.Tensor and type(a.to("cpu")) is torch.Tensor


class GPUData:
    """A DataModule whose validation batches are on the GPU (after training there)."""

    classes = ["a", "b", "c"]

    def __init__(self, n: int = 40):
        g = torch.Generator().manual_seed(0)
        self.X = torch.rand(n, 1, 8, 8, generator=g)
        self.y = torch.randint(0, 3, (n,), generator=g)

    def val_dataloader(self):
        for i in range(0, len(self.y), 16):
            yield (self.X[i:i + 16].as_subclass(OnGPU), self.y[i:i + 16].as_subclass(OnGPU))


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def test_errors_and_confusion_on_gpu_data_give_what_cpu_data_gives():
    data, net = GPUData(), _net()
    cpu = (data.X, data.y, data.classes)
    errs, ref = viz.errors(net, data, top=5), viz.errors(net, cpu, top=5)
    assert errs.num_wrong == ref.num_wrong and errs.mistakes == ref.mistakes
    conf = viz.confusion(net, data)
    assert torch.equal(conf.matrix, viz.confusion(net, cpu).matrix)
    assert int(conf.matrix.sum()) == 40
    # an (X, y) tuple on the GPU, too
    on_gpu = (data.X.as_subclass(OnGPU), data.y.as_subclass(OnGPU))
    assert torch.equal(viz.confusion(net, on_gpu).matrix, conf.matrix)
    ev = viz.eval_set(data)
    assert type(ev.X) is torch.Tensor and type(ev.y) is torch.Tensor


# --------------------------------------------------------- a GPU that is not there
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("dev") / "run"
    assert main(["train", "lenet", "--dataset", "synthetic", "--num-train", "64",
                 "--batch-size", "32", "--dry-run", "--device", "cpu", "--num-threads", "1",
                 "--out", str(out)]) == 0
    return out / "last.pt"


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("device", ["cuda", "mps"])
@pytest.mark.parametrize("command", ["predict", "eval", "viz errors", "viz kernels", "train"])
def test_device_cuda_without_a_gpu_is_one_clear_line(checkpoint, tmp_path, no_cuda, capsys,
                                                     command, device):
    from PIL import Image

    img = tmp_path / "x.png"
    Image.new("L", (28, 28), 0).save(img)
    argv = {"predict": ["predict", str(checkpoint), str(img)],
            "eval": ["eval", str(checkpoint), "--limit-batches", "1"],
            "viz errors": ["viz", "errors", str(checkpoint), "--out", str(tmp_path / "e.png")],
            "viz kernels": ["viz", "kernels", str(checkpoint), "--out",
                            str(tmp_path / "k.png")],
            "train": ["train", "lenet", "--dataset", "synthetic", "--dry-run"]}[command]
    capsys.readouterr()
    assert main([*argv, "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error:") and err.count("\n") == 1, err
    assert ("no CUDA GPU" if device == "cuda" else "MPS") in err and "--device cpu" in err
    assert "damaged" not in err and "truncated" not in err
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "k.png").exists()


def test_predict_and_viz_auto_fall_back_to_the_cpu(checkpoint, tmp_path, no_cuda, capsys):
    from PIL import Image

    img = tmp_path / "x.png"
    Image.new("L", (28, 28), 0).save(img)
    assert main(["predict", str(checkpoint), str(img), "--device", "auto"]) == 0
    assert main(["viz", "kernels", str(checkpoint), "--device", "auto",
                 "--out", str(tmp_path / "k.png")]) == 0


# ------------------------------------------------- host-to-device copies per batch
class HostToDevice(TorchDispatchMode):
    """Counts ops that take a CPU tensor and give a tensor on another device."""

    def __init__(self):
        super().__init__()
        self.copies: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        ins = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_leaves(out) if isinstance(o, torch.Tensor)]
        if any(a.device.type == "cpu" and a.dim() > 0 for a in ins) and any(
                o.device.type != "cpu" for o in outs):
            self.copies.append(str(func))
        return out


@pytest.mark.parametrize("augment", ["crop+flip", "crop+flip+erase"])
def test_augmentation_copies_nothing_from_the_host_per_batch(augment):
    dm = DataModule("synthetic", batch_size=16, num_train=64, num_val=16, resize=32,
                    normalize=True, augment=augment, device="meta")
    it = iter(dm.train_dataloader())
    next(it)  # the epoch's start: its order moves to the device once
    with HostToDevice() as mode:
        for _ in range(3):
            X, y = next(it)
    assert X.device.type == "meta" and tuple(X.shape) == (16, 1, 32, 32)
    assert mode.copies == [], mode.copies


def test_the_counter_sees_a_host_to_device_copy():
    with HostToDevice() as mode:
        torch.rand(4).to("meta")
    assert mode.copies


def test_augmentation_stays_reproducible_per_seed_and_epoch():
    def batches(seed, epoch):
        dm = DataModule("synthetic", batch_size=16, num_train=64, num_val=16,
                        augment="crop+flip+erase", seed=seed)
        dm.set_epoch(epoch)
        return [X for X, _ in dm.train_dataloader()]

    a, b = batches(1, 2), batches(1, 2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, batches(1, 3)))
