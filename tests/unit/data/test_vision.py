"""Finding, loading, validating and listing vision datasets (no network)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from dlx.data import vision
from dlx.data.idx import write_idx
from dlx.errors import DatasetError

from .conftest import TINY_TEST, TINY_TRAIN, make_tiny_files

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_registry_is_complete():
    assert set(vision.DATASETS) == {"mnist", "fashion-mnist", "kmnist"}
    for name, spec in vision.DATASETS.items():
        assert spec.name == name
        assert set(spec.files) == set(vision.ROLES)
        assert all(len(f.md5) == 32 for f in spec.files.values())
        assert len(spec.classes) == 10
        assert spec.mirrors and all(url.endswith("/") for url in spec.mirrors)
    assert vision.DATASETS["fashion-mnist"].classes[9] == "Ankle boot"
    assert vision.DATASETS["kmnist"].torchvision_dir == "KMNIST"


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(DatasetError, match="did you mean 'fashion-mnist'"):
        vision.get_spec("fashion_mnist")
    with pytest.raises(DatasetError, match="known: fashion-mnist, kmnist, mnist"):
        vision.load("cifar10", download=False)


def test_search_order(isolated_env, monkeypatch):
    tmp = isolated_env
    monkeypatch.setenv("DLX_DATA", str(tmp / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp / "xdg"))
    cwd = tmp / "cwd"
    assert vision.search_paths("fashion-mnist", tmp / "explicit") == [
        tmp / "explicit" / "fashion-mnist",
        tmp / "explicit" / "FashionMNIST" / "raw",
        tmp / "explicit",
        tmp / "env" / "fashion-mnist",
        tmp / "env" / "FashionMNIST" / "raw",
        cwd / "data" / "fashion-mnist",
        cwd / "data" / "FashionMNIST" / "raw",
        tmp / "xdg" / "dlx" / "fashion-mnist",
        tmp / "system" / "fashion-mnist",
    ]


def test_cache_defaults_to_home_and_duplicates_are_dropped(isolated_env, monkeypatch):
    monkeypatch.setenv("DLX_DATA", "data")  # the same place as ./data
    paths = vision.search_paths("mnist")
    local = isolated_env / "cwd" / "data"
    assert paths[:2] == [local / "mnist", local / "MNIST" / "raw"]
    assert paths[2] == isolated_env / "home" / ".cache" / "dlx" / "mnist"
    assert len(paths) == len(set(paths)) == 4


def test_find_walks_the_order(isolated_env, monkeypatch, tiny_spec):
    tmp = isolated_env
    assert vision.find(tiny_spec) is None
    system = make_tiny_files(tmp / "system" / "tiny")["train_images"].parent
    assert vision.find(tiny_spec) == system
    cache = make_tiny_files(tmp / "home" / ".cache" / "dlx" / "tiny")["train_images"].parent
    assert vision.find(tiny_spec) == cache
    # torchvision's layout with decompressed files counts too.
    torchvision = tmp / "cwd" / "data" / "Tiny" / "raw"
    make_tiny_files(torchvision, gzip=False)
    assert vision.find(tiny_spec) == torchvision
    monkeypatch.setenv("DLX_DATA", str(tmp / "env"))
    env = make_tiny_files(tmp / "env" / "tiny")["train_images"].parent
    assert vision.find(tiny_spec) == env
    explicit = make_tiny_files(tmp / "explicit")["train_images"].parent
    assert vision.find(tiny_spec, explicit) == explicit


def test_a_directory_needs_all_four_files(isolated_env, tiny_spec):
    files = make_tiny_files(isolated_env / "cwd" / "data" / "tiny")
    files["test_labels"].unlink()
    assert vision.find(tiny_spec) is None
    with pytest.raises(DatasetError, match="not found .*searched: .*dlx data fetch tiny"):
        vision.load(tiny_spec, download=False)


def test_mixed_gz_and_decompressed_files(isolated_env, tiny_spec):
    files = make_tiny_files(isolated_env / "cwd" / "data" / "tiny")
    images = files["train_images"]
    images.with_suffix("").write_bytes(gzip.decompress(images.read_bytes()))
    images.unlink()
    data = vision.load(tiny_spec, download=False)
    assert data.source == isolated_env / "cwd" / "data" / "tiny"
    assert data.train_images.shape == (TINY_TRAIN, 28, 28)


def test_load_gives_validated_tensors(isolated_env, tiny_spec, tiny_source):
    directory = tiny_source["train_images"].parent
    data = vision.load(tiny_spec, data_dir=directory, download=False)
    assert data.name == "tiny" and data.source == directory
    assert data.classes == list("abcdefghij")
    assert data.train_images.dtype == torch.uint8
    assert data.train_images.shape == (TINY_TRAIN, 28, 28)
    assert data.test_images.shape == (TINY_TEST, 28, 28)
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert data.train_labels.tolist() == [i % 10 for i in range(TINY_TRAIN)]
    assert "tensor" not in repr(data)  # the repr stays one short line


def test_labels_out_of_range(isolated_env, tiny_spec):
    directory = isolated_env / "bad"
    make_tiny_files(directory, label_offset=1)  # labels 1..10 for 10 classes
    with pytest.raises(DatasetError, match="train-labels.*label 10 is out of range for 10 classes"):
        vision.load(tiny_spec, directory, download=False)


@pytest.mark.parametrize(
    "role, tensor, pattern",
    [
        ("train_labels", torch.zeros(TINY_TRAIN - 1), "labels of shape 20, found 19"),
        ("test_images", torch.zeros(TINY_TEST, 28, 27), "images of shape 10x28x28, found 10x28x27"),
        ("train_images", torch.zeros(TINY_TRAIN, 784), "found 20x784"),
    ],
)
def test_wrong_shapes_are_reported(isolated_env, tiny_spec, role, tensor, pattern):
    files = make_tiny_files(isolated_env / "bad")
    write_idx(files[role], tensor.to(torch.uint8), gzip=True)
    with pytest.raises(DatasetError, match=pattern):
        vision.load(tiny_spec, isolated_env / "bad", download=False)
    (row,) = _status_with(tiny_spec, isolated_env / "bad")
    assert row["check"].startswith("corrupt:") and pattern.split(", ")[-1] in row["check"]


def _status_with(spec, data_dir):
    """status() over a registry holding only ``spec``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vision, "DATASETS", {spec.name: spec})
        return vision.status(data_dir)


def test_status_verified_unverified_and_missing(isolated_env, tiny_spec, tiny_source):
    (row,) = _status_with(tiny_spec, None)
    assert row == {"name": "tiny", "path": None, "check": vision.NOT_FOUND}
    source = tiny_source["train_images"].parent
    (row,) = _status_with(tiny_spec, source)
    assert row == {"name": "tiny", "path": source, "check": vision.VERIFIED}
    # Recompressed (different gzip bytes, same content): valid but unverified.
    recompressed = isolated_env / "recompressed"
    shutil.copytree(source, recompressed)
    labels = recompressed / "t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress(labels.read_bytes())
    labels.write_bytes(gzip.compress(content, compresslevel=1, mtime=1))
    (row,) = _status_with(tiny_spec, recompressed)
    assert row["check"] == vision.UNVERIFIED
    # A truncated gzip is caught without a full load.
    images = recompressed / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-100])
    (row,) = _status_with(tiny_spec, recompressed)
    assert row["check"].startswith("corrupt:") and "train-images" in row["check"]


def test_status_lists_every_registered_dataset():
    rows = vision.status()
    assert [r["name"] for r in rows] == ["mnist", "fashion-mnist", "kmnist"]
    assert all(r["check"] == vision.NOT_FOUND for r in rows)


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(vision, "SYSTEM_DATA_ROOT", REAL_FASHION.parent)
    data = vision.load("fashion-mnist", download=False)
    assert data.source == REAL_FASHION
    assert data.train_images.shape == (60_000, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (10_000, 28, 28)
    assert len(data.classes) == 10
    # Fashion-MNIST is exactly balanced: 6000 per class in train, 1000 in test.
    assert data.train_labels.bincount().tolist() == [6000] * 10
    assert data.test_labels.bincount().tolist() == [1000] * 10
    (row,) = [r for r in vision.status() if r["name"] == "fashion-mnist"]
    # Debian recompressed the files, so they cannot match the official md5.
    assert row == {"name": "fashion-mnist", "path": REAL_FASHION, "check": vision.UNVERIFIED}
