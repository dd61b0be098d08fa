"""IDX reading and writing: round trips, gzip detection, and every way a
file can be broken."""

from __future__ import annotations

import gzip
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlx.data.idx import check_idx, read_idx, write_idx
from dlx.errors import DatasetError


def header(dims, type_code=0x08) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(0, 6), min_size=1, max_size=4),
    compressed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_round_trip(tmp_path_factory, shape, compressed, seed):
    path = tmp_path_factory.mktemp("idx") / "x.idx"
    generator = torch.Generator().manual_seed(seed)
    tensor = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    write_idx(path, tensor, gzip=compressed)
    loaded = read_idx(path)
    assert loaded.dtype == torch.uint8
    assert torch.equal(loaded, tensor)
    assert check_idx(path) == tuple(shape)


def test_gzip_is_detected_by_magic_not_name(tmp_path):
    tensor = torch.arange(12, dtype=torch.uint8).reshape(3, 4)
    gz_without_suffix = write_idx(tmp_path / "plain-name", tensor, gzip=True)
    raw_with_suffix = write_idx(tmp_path / "looks.gz", tensor, gzip=False)
    assert gz_without_suffix.read_bytes()[:2] == b"\x1f\x8b"
    assert torch.equal(read_idx(gz_without_suffix), tensor)
    assert torch.equal(read_idx(raw_with_suffix), tensor)


def test_result_is_writable_and_owned(tmp_path):
    path = write_idx(tmp_path / "x", torch.zeros(2, 2, dtype=torch.uint8))
    loaded = read_idx(path)
    loaded += 1  # a read-only buffer would make torch warn or fail here
    assert loaded.sum() == 4


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("delta, word", [(-5, "truncated"), (3, "over-long")])
def test_wrong_payload_length_names_file_and_counts(tmp_path, compressed, delta, word):
    data = header((4, 5)) + bytes(20 + delta)
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(data) if compressed else data)
    for reader in (read_idx, check_idx):
        with pytest.raises(DatasetError, match=word) as info:
            reader(path)
        message = str(info.value)
        assert str(path) in message
        assert "needs 20 data bytes" in message
        assert f"found {20 + delta}" in message


def test_absurd_header_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(header((2**31, 2**31, 2**31)) + bytes(10)))
    with pytest.raises(DatasetError, match="truncated.*found 10"):
        read_idx(path)


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"\x12\x34\x08\x01" + bytes(8), "not an IDX file"),
        (header((2,), type_code=0x0D) + bytes(8), r"0x0d \(float32\) is not supported"),
        (header((2,), type_code=0x42) + bytes(2), r"0x42 \(unknown\)"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"\x00\x00\x08\x03" + bytes(6), "header truncated"),
    ],
)
def test_bad_headers(tmp_path, data, pattern):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match=pattern):
        read_idx(path)
    with pytest.raises(DatasetError, match=pattern):
        check_idx(path)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(header((100,)) + bytes(range(100)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    mangled = tmp_path / "mangled.gz"
    mangled.write_bytes(good[:12] + bytes(b ^ 0xFF for b in good[12:]))
    for path in (cut, mangled):
        with pytest.raises(DatasetError, match="corrupt gzip") as info:
            read_idx(path)
        assert str(path) in str(info.value)
        with pytest.raises(DatasetError):
            check_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read .*nope"):
        read_idx(tmp_path / "nope")


def test_check_idx_accepts_multi_member_gzip(tmp_path):
    # Concatenated gzip members are one valid stream, but the trailer then
    # records only the last member's size: check_idx must fall back.
    data = header((6,)) + bytes(6)
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(data[:5]) + gzip.compress(data[5:]))
    assert check_idx(path) == (6,)
    assert read_idx(path).shape == (6,)


def test_write_idx_rejects_other_dtypes(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", torch.zeros(3, dtype=torch.float32))


def test_write_idx_is_deterministic(tmp_path):
    tensor = torch.arange(10, dtype=torch.uint8)
    first = write_idx(tmp_path / "a.gz", tensor, gzip=True).read_bytes()
    second = write_idx(tmp_path / "b.gz", tensor, gzip=True).read_bytes()
    assert first == second
