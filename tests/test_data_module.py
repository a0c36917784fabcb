"""DataModule, batched transforms and the synthetic shapes set (no files needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnnlab.data import DataModule, load_dataset, make_synthetic, pixel_mean_std
from cnnlab.data.transforms import (
    parse_augment,
    random_crop,
    random_erase,
    random_flip,
    resize,
)
from cnnlab.errors import ConfigError


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # tiny tensors: a second intra-op thread only adds contention on a busy machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def small():
    """A 1000/300 synthetic dataset, shared (DataModule never modifies it)."""
    return make_synthetic(seed=0, num_train=1000, num_test=300)


def module(small, **kw):
    kw.setdefault("batch_size", 128)
    return DataModule(dataset=small, **kw)


def collect(loader):
    return [(X.clone(), y.clone()) for X, y in loader]


# ------------------------------------------------------------------ shapes
def test_batches_shapes_dtype_device_len(small):
    dm = module(small, batch_size=128)
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert len(train) == math.ceil(1000 / 128) == 8 and len(val) == 3
    batches = collect(train)
    assert len(batches) == len(train)
    assert [len(y) for _, y in batches] == [128] * 7 + [1000 - 7 * 128]  # last partial kept
    X, y = batches[0]
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert tuple(X.shape) == (128, 1, 28, 28) and X.device == torch.device("cpu")
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0
    assert (dm.num_train, dm.num_val, dm.num_classes, dm.in_channels) == (1000, 300, 10, 1)
    assert dm.image_size == (28, 28) and dm.classes == small.classes
    # every training example exactly once per epoch
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == sorted(small.train_labels.tolist())


def test_val_loader_in_order_and_unaugmented(small):
    dm = module(small, batch_size=100, augment="crop+flip+erase")
    X = torch.cat([X for X, _ in dm.val_dataloader()])
    y = torch.cat([y for _, y in dm.val_dataloader()])
    assert torch.equal(y, small.test_labels)
    assert torch.equal(X, small.test_images.float() / 255)


def test_num_train_num_val_take_the_first(small):
    dm = module(small, batch_size=50, num_train=120, num_val=70)
    assert (dm.num_train, dm.num_val, len(dm.train_dataloader()), len(dm.val_dataloader())) == \
        (120, 70, 3, 2)
    seen = torch.cat([y for _, y in dm.train_dataloader()])
    assert sorted(seen.tolist()) == sorted(small.train_labels[:120].tolist())


def test_text_labels(small):
    dm = module(small)
    assert dm.text_labels(torch.tensor([0, 3])) == ["square", "plus"]
    assert dm.text_labels([9]) == ["dots"] and dm.text_labels(1) == ["circle"]


@pytest.mark.parametrize("kw", [dict(batch_size=0), dict(resize=0), dict(resize=(1, 2, 3)),
                                dict(augment="rotate"), dict(num_train=0),
                                dict(num_train=5000), dict(rank=2, world_size=2)])
def test_bad_arguments_raise_config_error(small, kw):
    with pytest.raises(ConfigError):
        module(small, **kw)


# ------------------------------------------------------------ determinism
def test_same_seed_and_epoch_same_batches(small):
    a = module(small, seed=3, augment="crop,flip,erase")
    b = module(small, seed=3, augment="crop,flip,erase")
    a.set_epoch(5)
    b.set_epoch(5)
    for (Xa, ya), (Xb, yb) in zip(a.train_dataloader(), b.train_dataloader()):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)


def test_epoch_depends_only_on_seed_and_epoch(small):
    dm = module(small, seed=1, augment="crop")
    epochs = [collect(dm.train_dataloader()) for _ in range(3)]  # epochs 0, 1, 2 in a row
    assert dm.epoch == 3
    fresh = module(small, seed=1, augment="crop")
    fresh.set_epoch(2)  # a run resumed at epoch 2
    resumed = collect(fresh.train_dataloader())
    for (Xa, ya), (Xb, yb) in zip(epochs[2], resumed):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    assert not torch.equal(epochs[0][0][1], epochs[1][0][1])  # shuffles differ across epochs
    other = module(small, seed=2)
    other.set_epoch(2)
    assert not torch.equal(next(iter(other.train_dataloader()))[1], resumed[0][1])


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_disjoint_equal_remainder_dropped(small, world_size):
    shards = []
    for rank in range(world_size):
        dm = module(small, batch_size=64, seed=7, rank=rank, world_size=world_size)
        dm.set_epoch(4)
        shards.append(dm.train_indices(4))
        lens = [len(y) for _, y in dm.train_dataloader()]
        assert sum(lens) == 1000 // world_size and len(lens) == len(dm.train_dataloader())
    sets = [set(s.tolist()) for s in shards]
    assert all(len(s) == 1000 // world_size for s in sets)
    assert sum(len(s) for s in sets) == len(set().union(*sets))  # disjoint
    full = module(small, seed=7).train_indices(4)
    assert set().union(*sets) == set(full[:(1000 // world_size) * world_size].tolist())
    # validation: every example on exactly one rank, none dropped
    vals = [module(small, batch_size=64, rank=r, world_size=world_size) for r in range(world_size)]
    assert sum(dm.val_dataloader().num_examples for dm in vals) == 300


# ---------------------------------------------------- resize and normalise
def test_resize_shape_and_pil_agreement(small):
    dm = module(small, batch_size=16, resize=96)
    X, _ = next(iter(dm.val_dataloader()))
    assert tuple(X.shape) == (16, 1, 96, 96) and dm.image_size == (96, 96)
    dm2 = module(small, resize=(40, 56))
    assert tuple(next(iter(dm2.train_dataloader()))[0].shape[-2:]) == (40, 56)
    # d2l resizes PIL images with PIL's bilinear filter; ours agrees to PIL's uint8 rounding
    images = small.test_images[:6]
    for size in (96, 224, 20):
        ours = resize(images.float() / 255, (size, size))
        ref = torch.nn.functional.interpolate(images.float() / 255, size=(size, size),
                                              mode="bilinear", antialias=True)
        assert float((ours - ref).abs().max()) < 1e-5
        for x, o in zip(images, ours):
            pil = np.asarray(Image.fromarray(x[0].numpy()).resize((size, size), Image.BILINEAR))
            diff = (o[0] * 255).round() - torch.from_numpy(pil.astype(np.float32))
            assert float(diff.abs().max()) <= 1.0, size


def test_normalize_uses_computed_train_statistics(small):
    dm = module(small, normalize=True, batch_size=1000)
    mean, std = pixel_mean_std(small.train_images)
    assert (dm.mean, dm.std) == (mean, std)
    ref = small.train_images.float() / 255
    assert abs(mean - float(ref.mean())) < 1e-5 and abs(std - float(ref.std())) < 1e-4
    X, _ = next(iter(dm.train_dataloader()))
    assert abs(float(X.mean())) < 1e-3 and abs(float(X.std()) - 1) < 1e-3


# ---------------------------------------------------------------- augment
def test_parse_augment():
    assert parse_augment(None) == ()
    assert parse_augment("crop+flip") == parse_augment("crop,flip") == ("crop", "flip")
    assert parse_augment(["erase"]) == ("erase",)


@pytest.mark.parametrize("augment", ["crop", "flip", "erase", "crop+flip+erase"])
def test_augment_changes_images_keeps_labels_and_shape(small, augment):
    plain = module(small, seed=0, resize=32)
    aug = module(small, seed=0, resize=32, augment=augment)
    for (Xp, yp), (Xa, ya) in zip(plain.train_dataloader(), aug.train_dataloader()):
        assert torch.equal(yp, ya) and Xp.shape == Xa.shape
        changed = (Xp != Xa).flatten(1).any(1).float().mean()
        assert 0.2 < float(changed), augment  # many images changed (each op has p<=1)


def test_random_crop_is_a_shift_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    X = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    out = random_crop(X, 2, g)
    padded = torch.nn.functional.pad(X, (2, 2, 2, 2))
    for b in range(2):  # each output is some 6x6 window of its own padded image
        windows = padded[b, 0].unfold(0, 6, 1).unfold(1, 6, 1).reshape(-1, 6, 6)
        assert any(torch.equal(w, out[b, 0]) for w in windows)
    assert random_crop(X, 2, g, padding_mode="reflect").shape == X.shape


def test_flip_and_erase_per_sample():
    X = torch.rand(64, 1, 8, 8)
    flipped = random_flip(X, torch.Generator().manual_seed(0))
    is_flip = torch.tensor([torch.equal(f, x.flip(-1)) for f, x in zip(flipped, X)])
    same = torch.tensor([torch.equal(f, x) for f, x in zip(flipped, X)])
    assert bool((is_flip | same).all()) and 0 < int(is_flip.sum()) < 64
    erased = random_erase(X, torch.Generator().manual_seed(0), p=1.0, value=-1.0)
    masks = erased == -1.0
    assert bool(masks.flatten(1).any(1).all())  # p=1: every image has a rectangle
    for m in masks[:, 0]:  # and it is one axis-aligned rectangle
        rows, cols = m.any(1).nonzero().flatten(), m.any(0).nonzero().flatten()
        assert int(m.sum()) == len(rows) * len(cols)
        assert int(rows[-1] - rows[0] + 1) == len(rows)


# --------------------------------------------------------------- synthetic
def test_synthetic_deterministic_balanced():
    a, b = make_synthetic(seed=4, num_train=200, num_test=50), make_synthetic(4, 200, 50)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    c = make_synthetic(seed=5, num_train=200, num_test=50)
    assert not torch.equal(a.train_images, c.train_images)
    assert torch.bincount(a.train_labels).tolist() == [20] * 10
    assert a.train_images.dtype == torch.uint8 and len(a.classes) == 10
    ds = load_dataset("synthetic")
    assert (len(ds.train_labels), len(ds.test_labels)) == (5000, 1000)


@pytest.mark.timeout(120)
def test_synthetic_learnable_by_small_cnn():
    torch.manual_seed(0)
    dm = DataModule("synthetic", batch_size=32, num_train=2000, num_val=500)
    net = nn.Sequential(  # a "modern" LeNet (d2l 7.6 exercise): ReLU and max-pooling
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    acc = 0.0
    for _ in range(8):  # usually above 0.9 after 3 epochs
        net.train()
        for X, y in dm.train_dataloader():
            loss = nn.functional.cross_entropy(net(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = sum(int((net(X).argmax(1) == y).sum()) for X, y in dm.val_dataloader())
        acc /= dm.num_val
        if acc > 0.93:
            break
    assert acc > 0.9
