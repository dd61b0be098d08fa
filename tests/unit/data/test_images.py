"""dlx/data/images.py and image_cache.py: layouts, image modes, the cache, streaming, and every bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from dlx.data import image_cache, images
from dlx.data.image_cache import StreamedImages, load_folder, standard_splits
from dlx.errors import DatasetError
from tests.image_folder_helpers import colour_folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def grey(value: int, size: int = 8) -> Image.Image:
    return Image.fromarray(np.full((size, size), value, dtype=np.uint8), "L")


def rgb(colour: tuple[int, int, int], size: int = 8) -> Image.Image:
    return Image.fromarray(np.tile(np.array(colour, dtype=np.uint8), (size, size, 1)), "RGB")


def two_classes(root, make=grey, count: int = 3, suffix: str = "png"):
    for label, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            make(40 * label + index).save(root / name / f"{index}.{suffix}")
    return root


# ---------------------------------------------------------------- layouts


def test_class_folders_give_classes_channels_and_size(tmp_path):
    root = colour_folder(tmp_path / "shapes", size=16, per_class=4)
    data = load_folder(root, progress=False)
    assert data.classes == ["circle", "square", "triangle"]
    assert data.shape == (3, 16, 16)
    train_images, train_labels = data.splits["train"]
    assert train_images.dtype == torch.uint8 and tuple(train_images.shape) == (12, 3, 16, 16)
    assert train_labels.bincount().tolist() == [4, 4, 4]
    assert train_labels[:3].unique().numel() > 1  # a fixed shuffled order: the first images mix classes
    assert data.decoded and not data.streamed and data.name == "shapes"


def test_split_folders_are_kept(tmp_path):
    root = colour_folder(tmp_path / "split", size=8, per_class=2, splits=("train", "val", "test"))
    data = load_folder(root, progress=False)
    assert sorted(data.splits) == ["test", "train", "val"]
    splits = standard_splits(data, val_size=5000, test_fraction=0.1)
    assert [splits[s][0].shape[0] for s in ("train", "val", "test")] == [6, 6, 6]


def test_missing_splits_are_held_out_seeded(tmp_path):
    root = colour_folder(tmp_path / "one", size=8, per_class=40)
    data = load_folder(root, progress=False)
    first = standard_splits(data, val_size=5000, test_fraction=0.1)
    again = standard_splits(load_folder(root, progress=False), val_size=5000, test_fraction=0.1)
    counts = [first[s][0].shape[0] for s in ("train", "val", "test")]
    assert counts == [98, 10, 12]  # test: a tenth of 120; val: at most a tenth of what is left
    assert torch.equal(first["test"][0], again["test"][0])
    assert standard_splits(data, 5000, 0.1, validation=False)["val"][0].shape[0] == 0


def test_csv_rows(tmp_path):
    root = two_classes(tmp_path / "imgs")
    rows = ["path,label"] + [f"imgs/{name}/{i}.png,{name}" for name in ("a", "b") for i in range(3)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    data = load_folder(tmp_path / "list.csv", progress=False)
    assert data.classes == ["a", "b"] and data.shape == (1, 8, 8) and data.name == "list"
    assert root.exists()


# ---------------------------------------------------------------- image modes


@pytest.mark.parametrize("suffix", ["png", "jpg", "bmp", "webp", "gif"])
def test_formats_decode(tmp_path, suffix):
    root = two_classes(tmp_path / suffix, suffix=suffix)
    data = load_folder(root, progress=False)
    pixels, labels = data.splits["train"]
    assert data.shape == ((3, 8, 8) if suffix == "webp" else (1, 8, 8))  # WebP has no grey mode
    values = sorted(int(v) for v in pixels[:, 0, 3, 3])
    expected = [0, 1, 2, 40, 41, 42]
    assert all(abs(got - want) <= 2 for got, want in zip(values, expected, strict=True))  # JPEG, WebP: within 2
    assert torch.equal(labels, (pixels[:, 0, 3, 3] > 20).long())


def test_modes_rgba_palette_16_bit_and_gif_first_frame(tmp_path):
    root = tmp_path / "modes"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
    rgba = Image.fromarray(np.tile(np.array([200, 10, 20, 128], dtype=np.uint8), (8, 8, 1)), "RGBA")
    rgba.save(root / "a" / "rgba.png")
    rgb((10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "a" / "palette.png")
    sixteen = Image.fromarray(np.full((8, 8), 257 * 100, dtype=np.uint16))
    sixteen.save(root / "b" / "sixteen.png")
    frames = [rgb((250, 0, 0)), rgb((0, 0, 250))]
    frames[0].save(root / "b" / "anim.gif", save_all=True, append_images=frames[1:])
    data = load_folder(root, progress=False)
    pixels = data.splits["train"][0]
    assert data.shape == (3, 8, 8)
    found = sorted(tuple(pixels[i, :, 0, 0].tolist()) for i in range(4))
    assert (10, 200, 30) in found  # a/palette.png
    assert (200, 10, 20) in found  # a/rgba.png: alpha dropped
    assert (100, 100, 100) in found  # b/sixteen.png: 16-bit scaled to 8, grey made RGB
    assert any(r > 200 and b < 50 for r, _, b in found)  # b/anim.gif: the first (red) frame
    assert any("greyscale" in notice for notice in data.notices)  # the 16-bit grey one, converted


def test_mixed_grey_and_colour_is_colour_said_once(tmp_path):
    root = tmp_path / "mixed"
    two_classes(root)
    rgb((255, 0, 0)).save(root / "a" / "red.png")
    said = []
    data = load_folder(root, progress=False, say=said.append)
    assert data.shape[0] == 3
    notices = [line for line in said if "greyscale" in line]
    assert len(notices) == 1 and "6 of 7" in notices[0]
    again = []
    load_folder(root, progress=False, say=again.append)  # from the cache: the notice is said again, once
    assert sum("greyscale" in line for line in again) == 1


def test_grey_palette_stays_grey(tmp_path):
    root = two_classes(tmp_path / "greypal", make=lambda v: grey(v).convert("P"))
    assert load_folder(root, progress=False).shape[0] == 1


def test_image_size_resizes_and_different_sizes_are_refused(tmp_path):
    root = two_classes(tmp_path / "sizes")
    grey(7, size=12).save(root / "a" / "big.png")
    with pytest.raises(DatasetError, match=r"differ in size.*big\.png is 12x12.*data\.image_size"):
        load_folder(root, progress=False)
    data = load_folder(root, image_size=10, progress=False)
    assert data.shape == (1, 10, 10)


def test_non_square_needs_image_size(tmp_path):
    root = tmp_path / "wide"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.new("L", (16, 8)).save(root / name / "x.png")
    with pytest.raises(DatasetError, match="not square"):
        load_folder(root, progress=False)
    assert load_folder(root, image_size=8, progress=False).shape == (1, 8, 8)


# ---------------------------------------------------------------- cache and streaming


def test_second_load_reads_the_cache_and_a_change_decodes_again(tmp_path):
    root = two_classes(tmp_path / "cached")
    first = load_folder(root, progress=False)
    second = load_folder(root, progress=False)
    assert first.decoded and not second.decoded and first.cache == second.cache
    assert torch.equal(first.splits["train"][0], second.splits["train"][0])
    grey(99).save(root / "a" / "0.png")
    os.utime(root / "a" / "0.png", ns=(1, 1))
    third = load_folder(root, progress=False)
    assert third.decoded and third.cache != first.cache
    assert 99 in third.splits["train"][0][:, 0, 0, 0].tolist()


def test_large_folder_streams_from_the_cache(tmp_path):
    root = colour_folder(tmp_path / "big", size=8, per_class=20)
    whole = load_folder(root, progress=False)
    streamed = load_folder(root, max_memory=1000, progress=False)  # 60 × 192 bytes > 1000
    images_ = streamed.splits["train"][0]
    assert streamed.streamed and isinstance(images_, StreamedImages)
    assert images_.shape == whole.splits["train"][0].shape
    index = torch.tensor([5, 0, 59, 5])
    assert torch.equal(images_[index], whole.splits["train"][0][index])
    assert torch.equal(images_[3:7], whole.splits["train"][0][3:7])
    splits = standard_splits(streamed, 5000, 0.1)
    in_memory = standard_splits(whole, 5000, 0.1)
    for split in ("train", "val", "test"):
        assert torch.equal(splits[split][0][torch.arange(splits[split][0].shape[0])], in_memory[split][0])


def test_interrupted_decode_leaves_no_cache(tmp_path, monkeypatch):
    root = two_classes(tmp_path / "interrupted")
    calls = []

    def failing(path, channels, size):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return np.zeros((channels, size, size), dtype=np.uint8)

    monkeypatch.setattr(image_cache, "decode", failing)
    with pytest.raises(KeyboardInterrupt):
        load_folder(root, progress=False)
    assert not any(image_cache.cache_dir().iterdir())


def test_channel_stats_match_torch():
    pixels = torch.randint(0, 256, (50, 3, 6, 6), dtype=torch.uint8)
    mean, std = images.channel_stats(pixels, chunk=7)
    scaled = pixels.double() / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), scaled.mean(dim=(0, 2, 3)))
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), scaled.transpose(0, 1).reshape(3, -1).std(1))


# ---------------------------------------------------------------- bad input: one line naming the file


def test_truncated_image(tmp_path):
    root = two_classes(tmp_path / "trunc")
    full = (root / "a" / "1.png").read_bytes()
    big = root / "a" / "1.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)).save(big)
    full = big.read_bytes()
    big.write_bytes(full[: len(full) // 2])
    with pytest.raises(DatasetError, match=r"a/1\.png: truncated or corrupt"):
        load_folder(root, progress=False)


def test_non_image_file(tmp_path):
    root = two_classes(tmp_path / "text")
    (root / "b" / "notes.png").write_text("not a picture")
    with pytest.raises(DatasetError, match=r"b/notes\.png: not an image"):
        load_folder(root, progress=False)


def test_other_files_are_ignored_and_said(tmp_path):
    root = two_classes(tmp_path / "readme")
    (root / "a" / "README.txt").write_text("hello")
    (root / "a" / ".DS_Store").write_text("x")
    said = []
    load_folder(root, progress=False, say=said.append)
    assert any("ignored 1 files" in line and "README.txt" in line for line in said)


def test_empty_class_folder(tmp_path):
    root = two_classes(tmp_path / "empty")
    (root / "c").mkdir()
    with pytest.raises(DatasetError, match=r"empty/c: empty class folder"):
        load_folder(root, progress=False)


def test_single_class(tmp_path):
    root = tmp_path / "single" / "only"
    root.mkdir(parents=True)
    grey(1).save(root / "x.png")
    with pytest.raises(DatasetError, match=r"at least two classes, found 1 \('only'\)"):
        load_folder(root.parent, progress=False)


def test_csv_label_without_file(tmp_path):
    two_classes(tmp_path / "imgs")
    (tmp_path / "list.csv").write_text("imgs/a/0.png,a\nimgs/b/9.png,b\n")
    with pytest.raises(DatasetError, match=r"list\.csv:2: label 'b' names .*imgs/b/9\.png, which does not exist"):
        load_folder(tmp_path / "list.csv", progress=False)


def test_decompression_bomb(tmp_path):
    root = two_classes(tmp_path / "bomb")
    Image.new("L", (8000, 8000)).save(root / "b" / "bomb.png")  # 64 M pixels, a few kB on disk
    with pytest.raises(DatasetError, match=r"b/bomb\.png: 8000x8000 is larger than the 40,000,000-pixel limit"):
        load_folder(root, progress=False)


def test_too_many_files_refused_before_decoding(tmp_path, monkeypatch):
    root = two_classes(tmp_path / "many", count=5)
    monkeypatch.setattr(images, "MAX_FILES", 6)
    with pytest.raises(DatasetError, match="more than the 6 images"):
        load_folder(root, progress=False)


def test_unknown_class_in_test_split(tmp_path):
    root = colour_folder(tmp_path / "odd", size=8, per_class=1, splits=("train",))
    (root / "test" / "dog").mkdir(parents=True)
    with pytest.raises(DatasetError, match="class 'dog' is not among train/'s classes"):
        load_folder(root, progress=False)
