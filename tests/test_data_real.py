"""The real Fashion-MNIST files (Debian's dataset-fashion-mnist or any folder on the search path).

Skipped when the files are absent; CI installs the Debian package so these run there.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import DataModule, is_available, load_fashion_mnist, pixel_mean_std
from cnnlab.data.datasets import parsed_cache_path
from cnnlab.data.sources import find_dataset_dir

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not is_available("fashion-mnist"),
                       reason="Fashion-MNIST files absent (apt-get install dataset-fashion-mnist)"),
]


@pytest.fixture(scope="module")
def fmnist():
    return load_fashion_mnist(download=False)


def test_sizes_and_class_balance(fmnist):
    assert tuple(fmnist.train_images.shape) == (60000, 1, 28, 28)
    assert tuple(fmnist.test_images.shape) == (10000, 1, 28, 28)
    assert fmnist.train_images.dtype == torch.uint8 and fmnist.train_labels.dtype == torch.int64
    assert torch.bincount(fmnist.train_labels).tolist() == [6000] * 10
    assert torch.bincount(fmnist.test_labels).tolist() == [1000] * 10
    assert fmnist.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def test_pixel_statistics(fmnist):
    mean, std = pixel_mean_std(fmnist.train_images)
    assert abs(mean - 0.286) < 1e-3 and abs(std - 0.353) < 1e-3


def test_parsed_cache_exists_and_matches(fmnist):
    files = find_dataset_dir("fashion-mnist")
    path = parsed_cache_path("fashion-mnist", files)
    assert path.is_file()
    blob = torch.load(path, weights_only=True)
    assert torch.equal(blob["train_images"], fmnist.train_images)
    assert torch.equal(blob["test_labels"].long(), fmnist.test_labels)


def test_datamodule_on_real_data(fmnist):
    dm = DataModule("fashion-mnist", batch_size=256, resize=96, num_train=1024, num_val=512,
                    normalize=True)
    assert len(dm.train_dataloader()) == 4 and len(dm.val_dataloader()) == 2
    assert abs(dm.mean - 0.2860) < 1e-4 and abs(dm.std - 0.3530) < 1e-4
    X, y = next(iter(dm.val_dataloader()))
    assert tuple(X.shape) == (256, 1, 96, 96) and torch.equal(y, fmnist.test_labels[:256])
    assert dm.text_labels(y[:2]) == [fmnist.classes[int(i)] for i in y[:2]]
