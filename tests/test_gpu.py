"""On an NVIDIA GPU: what users do on Colab, end to end (marker ``gpu``; run by ``make gpu-check``).

Every test skips, with the reason, where CUDA is not available; the CPU halves of
these paths are tested elsewhere (test_devices.py stands in for the GPU with the
``meta`` device and a tensor subclass). Data: the synthetic set, or real
Fashion-MNIST where a test needs the users' own cell (``make gpu-check`` points
``CNNLAB_DATA`` at ``data/fashion-mnist`` of the checkout; nothing is downloaded).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from cnnlab.models import create_model, list_models
from cnnlab.models.registry import get_model_info
from cnnlab.train import TrainConfig, Trainer, load_checkpoint, resolve_config

HAVE_CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not HAVE_CUDA, reason="needs a CUDA GPU (make gpu-check)")]
ROOT = Path(__file__).resolve().parents[1]


def _families() -> dict[str, str]:
    """family -> its first registered model (every family of the zoo, once)."""
    out: dict[str, str] = {}
    for name in list_models():
        out.setdefault(get_model_info(name).family, name)
    return out


def small(**kw) -> TrainConfig:
    base = dict(model="lenet-modern", dataset="synthetic", num_train=512, batch_size=64,
                limit_val_batches=2, epochs=1, device="cuda", optimizer="momentum", lr=0.05)
    base.update(kw)
    return resolve_config(TrainConfig(**base))


@pytest.mark.parametrize("family", sorted(_families()))
def test_a_cuda_training_step_for_every_model_family(family):
    name = _families()[family]
    size = get_model_info(name).input_size
    torch.manual_seed(0)
    net = create_model(name, input_size=size).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    X = torch.rand(4, 1, size, size, device="cuda")
    y = torch.randint(0, 10, (4,), device="cuda")
    before = [p.detach().clone() for p in net.parameters()]
    loss = nn.functional.cross_entropy(net(X), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and loss.device.type == "cuda"
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters()))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_with_channels_last_trains(precision):
    trainer = Trainer(small(model="resnet18", resize=32, precision=precision,
                            channels_last=True), save=False)
    history = trainer.fit()
    assert trainer.device.type == "cuda"
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in history)
    assert trainer.scaler.is_enabled() == (trainer.precision == "fp16")


def test_torch_compile_trains_on_the_gpu():
    trainer = Trainer(small(compile=True), save=False)
    history = trainer.fit()
    assert hasattr(trainer.net, "_orig_mod")
    assert history[-1]["val_acc"] is not None and history[-1]["train_loss"] > 0


def test_a_checkpoint_saved_on_the_gpu_loads_on_the_cpu_and_back(tmp_path):
    from PIL import Image

    from cnnlab.cli import main
    from cnnlab.train import model_from_checkpoint

    trainer = Trainer(small(out_dir=str(tmp_path / "run")))
    trainer.fit()
    path = tmp_path / "run" / "last.pt"
    X = torch.rand(8, 1, 28, 28)
    cpu_net, _, state = model_from_checkpoint(path, map_location="cpu")
    assert all(p.device.type == "cpu" for p in cpu_net.parameters())
    assert all(t.device.type == "cpu" for t in state["model"].values())
    gpu_net, _, _ = model_from_checkpoint(path, map_location="cuda")
    assert all(p.device.type == "cuda" for p in gpu_net.parameters())
    with torch.no_grad():
        a, b = cpu_net(X), gpu_net(X.cuda()).cpu()
    torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)  # TF32 convolutions on the GPU
    # resumed on the GPU (its CUDA random state comes back), and predict on the GPU
    resumed = Trainer(small(epochs=2, out_dir=str(tmp_path / "run")), resume=path)
    assert len(resumed.fit()) == 2
    Image.new("L", (28, 28), 0).save(tmp_path / "x.png")
    assert main(["predict", str(path), str(tmp_path / "x.png"), "--device", "cuda"]) == 0


def test_d2l_trainer_num_gpus_1_runs_the_users_lenet_cell_on_the_gpu(monkeypatch, tmp_path):
    from cnnlab.data import is_available

    if not is_available("fashion-mnist"):
        pytest.skip("the users' cell reads real Fashion-MNIST: put the four files in "
                    "data/fashion-mnist (see benchmarks/gpu_check.py)")
    monkeypatch.setenv("CNNLAB_D2L_MAX_EPOCHS", "1")
    monkeypatch.setenv("CNNLAB_D2L_LIMIT_BATCHES", "20")
    monkeypatch.setenv("CNNLAB_D2L_BOARD", str(tmp_path / "board.png"))
    text = (ROOT / "tests" / "notebooks" / "ch7_6_lenet.py").read_text()
    ns: dict = {"__name__": "__notebook__"}
    exec(compile(text, "ch7_6_lenet.py", "exec"), ns)
    trainer, model = ns["trainer"], ns["model"]
    assert trainer.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert 0.0 <= model.board.data["val_acc"][-1].y <= 1.0


def test_viz_on_data_that_lives_on_the_gpu():
    from cnnlab import viz
    from cnnlab.data import DataModule

    data = DataModule("synthetic", batch_size=32, num_train=64, num_val=96, device="cuda")
    net = create_model("lenet-modern").cuda()
    assert int(viz.confusion(net, data).matrix.sum()) == 96
    assert viz.errors(net, data, top=4).num_images == 96
    assert len(viz.activations(net, data, max_images=32).inputs) == 3
    X, _ = next(iter(data.val_dataloader()))
    assert viz.features(net, X[0]).prediction in range(10)


def test_augmentation_on_cuda_copies_nothing_from_the_host_per_batch():
    from cnnlab.data import DataModule
    from test_devices import HostToDevice

    dm = DataModule("synthetic", batch_size=32, num_train=256, resize=64, normalize=True,
                    augment="crop+flip+erase", device="cuda")
    it = iter(dm.train_dataloader())
    next(it)
    with HostToDevice() as mode:
        for _ in range(3):
            X, _ = next(it)
    assert X.is_cuda and mode.copies == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (torch.distributed.is_available()
                         and torch.distributed.is_nccl_available()), reason="no NCCL")
def test_ddp_with_nccl_on_one_gpu():
    """The DDP code path (DDP wrapper, NCCL all-reduce of metrics) with world size 1."""
    script = textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from cnnlab.train import TrainConfig, Trainer, resolve_config
        from cnnlab.train.distributed import DistContext

        class OneRank(DistContext):  # world size 1, yet every distributed code path
            @property
            def enabled(self):
                return True

        dist.init_process_group("nccl", init_method="tcp://127.0.0.1:{_free_port()}",
                                rank=0, world_size=1)
        torch.cuda.set_device(0)
        cfg = resolve_config(TrainConfig(model="lenet-modern", dataset="synthetic",
                                         num_train=256, batch_size=64, epochs=1,
                                         limit_val_batches=2, device="cuda"))
        t = Trainer(cfg, save=False)
        t.dist = OneRank(world_size=1)
        hist = t.fit()
        assert isinstance(t.net, torch.nn.parallel.DistributedDataParallel), type(t.net)
        print("BACKEND", dist.get_backend(), "LOSS", hist[-1]["train_loss"])
        dist.destroy_process_group()
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"BACKEND nccl LOSS [0-9.]+", r.stdout), r.stdout
    # and what users type: torchrun with one process per GPU
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=1", "-m", "cnnlab", "train", "lenet", "--device",
                        "cuda", "--dataset", "synthetic", "--dry-run"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr[-3000:]


class _Interrupt:
    def on_epoch_end(self, trainer, row):
        raise KeyboardInterrupt


def test_resume_on_the_gpu_is_bitwise_identical_with_deterministic(tmp_path):
    kw = dict(model="lenet-bn", deterministic=True, augment="crop,flip", epochs=2,
              schedule="cosine", num_train=384)
    Trainer(small(out_dir=str(tmp_path / "a"), **kw)).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(small(out_dir=str(tmp_path / "b"), **kw), callbacks=[_Interrupt()]).fit()
    Trainer(small(out_dir=str(tmp_path / "b"), **kw), resume=tmp_path / "b" / "last.pt").fit()
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
