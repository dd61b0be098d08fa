"""Read and write IDX files, the format of MNIST and its siblings.

An IDX file is a 4-byte magic number -- two zero bytes, a type code and the
number of dimensions -- then one big-endian uint32 per dimension, then the
values in row-major order. The files are usually gzipped. We recognise gzip
by its magic bytes (1f 8b), not by the file name, because torchvision and
users rename files freely.

Only the uint8 type (0x08) is supported: it is what every MNIST-family file
uses. Any other problem -- a wrong magic, a truncated or over-long payload,
a corrupt gzip stream -- raises ``DatasetError`` naming the file.

torch is imported inside the functions that need it, so that ``dlx data
list`` (which only peeks at headers through ``check_idx``) starts fast.
"""

from __future__ import annotations

import gzip as gzip_lib
import math
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dlx.errors import DatasetError

if TYPE_CHECKING:
    import torch

GZIP_MAGIC = b"\x1f\x8b"
UINT8 = 0x08
# Names of all IDX type codes, so that an unsupported file gets a clear error.
TYPE_NAMES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}
# Deflate cannot compress better than about 1032:1, so a gzip file of n bytes
# never holds more than this many times n bytes. Used to reject absurd
# headers before allocating memory for them.
_MAX_GZIP_RATIO = 1100
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (gzipped or raw) into a uint8 tensor of its shape.

    The payload must be exactly prod(dims) bytes long; anything else, and any
    unreadable or corrupt file, raises ``DatasetError`` naming the file.
    """
    import torch

    path = Path(path)
    try:
        with _open(path) as (stream, compressed):
            dims = _read_header(stream, path)
            expected = math.prod(dims)
            header_bytes = 4 + 4 * len(dims)
            if expected > _payload_limit(path, compressed, header_bytes):
                # Count instead of allocating: the header promises more than
                # the file can possibly hold.
                _raise_length_error(path, dims, header_bytes, _count_rest(stream))
            buffer = bytearray(expected)
            received = _read_into(stream, buffer)
            if received == expected:
                received += _count_rest(stream)
    except (gzip_lib.BadGzipFile, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt gzip data ({error})") from None
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    if received != expected:
        _raise_length_error(path, dims, header_bytes, received)
    if expected == 0:
        return torch.empty(dims, dtype=torch.uint8)
    return torch.frombuffer(buffer, dtype=torch.uint8).reshape(dims)


def check_idx(path: str | os.PathLike) -> tuple[int, ...]:
    """Check an IDX file's structure cheaply and return its dims.

    Reads the header and compares the payload size with the file size (raw
    files) or with the size recorded in the gzip trailer, without
    decompressing the payload. If the trailer disagrees (a truncated file,
    or a rare multi-member gzip whose trailer only covers its last member),
    falls back to a full ``read_idx`` so the verdict is always right.
    """
    path = Path(path)
    try:
        with _open(path) as (stream, compressed):
            dims = _read_header(stream, path)
        file_size = path.stat().st_size
        if compressed:
            with open(path, "rb") as raw:
                raw.seek(max(file_size - 4, 0))
                trailer = raw.read(4)
    except (gzip_lib.BadGzipFile, EOFError, zlib.error) as error:
        raise DatasetError(f"{path}: corrupt gzip data ({error})") from None
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    header_bytes = 4 + 4 * len(dims)
    expected = math.prod(dims)
    if not compressed:
        if file_size - header_bytes != expected:
            _raise_length_error(path, dims, header_bytes, file_size - header_bytes)
        return dims
    # The gzip trailer stores the uncompressed size modulo 2**32.
    if len(trailer) == 4 and struct.unpack("<I", trailer)[0] == (header_bytes + expected) % 2**32:
        return dims
    return tuple(read_idx(path).shape)


def write_idx(path: str | os.PathLike, tensor, gzip: bool = False) -> Path:
    """Write a uint8 tensor (or array) as an IDX file, gzipped if asked.

    The gzip header carries no time stamp, so the same tensor always gives
    the same bytes (and the same md5) -- tests rely on that.
    """
    import torch

    tensor = torch.as_tensor(tensor)
    if tensor.dtype != torch.uint8:
        raise ValueError(f"write_idx supports uint8 tensors only, got {tensor.dtype}")
    if not 1 <= tensor.ndim <= 255:
        raise ValueError(f"an IDX file holds 1 to 255 dimensions, got {tensor.ndim}")
    header = bytes([0, 0, UINT8, tensor.ndim]) + struct.pack(f">{tensor.ndim}I", *tensor.shape)
    data = header + tensor.contiguous().cpu().numpy().tobytes()
    if gzip:
        data = gzip_lib.compress(data, mtime=0)
    path = Path(path)
    path.write_bytes(data)
    return path


@contextmanager
def _open(path: Path) -> Iterator[tuple[BinaryIO, bool]]:
    """Open a file for reading, decompressing it if it starts with gzip's magic."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        if compressed:
            with gzip_lib.GzipFile(fileobj=raw) as stream:
                yield stream, True
        else:
            yield raw, False


def _read_header(stream: BinaryIO, path: Path) -> tuple[int, ...]:
    """Parse and validate the magic number and dims at the start of a stream."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DatasetError(f"{path}: too short to be an IDX file ({len(magic)} bytes)")
    if magic[:2] != b"\x00\x00":
        raise DatasetError(
            f"{path}: not an IDX file (starts with bytes {magic.hex(' ')}, expected 00 00 08 ..)"
        )
    type_code, ndim = magic[2], magic[3]
    if type_code != UINT8:
        type_name = TYPE_NAMES.get(type_code, "unknown")
        raise DatasetError(
            f"{path}: IDX type code 0x{type_code:02x} ({type_name}) is not supported;"
            " only 0x08 (uint8) is"
        )
    if ndim == 0:
        raise DatasetError(f"{path}: IDX header declares zero dimensions")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DatasetError(f"{path}: IDX header truncated (expected {ndim} dimension sizes)")
    return struct.unpack(f">{ndim}I", raw_dims)


def _payload_limit(path: Path, compressed: bool, header_bytes: int) -> int:
    """The most payload bytes the file could hold, to refuse absurd headers."""
    size = path.stat().st_size
    return size * _MAX_GZIP_RATIO if compressed else size - header_bytes


def _read_into(stream: BinaryIO, buffer: bytearray) -> int:
    """Fill ``buffer`` from ``stream``; return how many bytes arrived before EOF."""
    view = memoryview(buffer)
    filled = 0
    # readinto may return fewer bytes than asked, so loop until full or EOF.
    while filled < len(buffer):
        count = stream.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


def _count_rest(stream: BinaryIO) -> int:
    """Read a stream to its end, returning how many bytes were left."""
    total = 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
    return total


def _raise_length_error(path: Path, dims: tuple[int, ...], header_bytes: int, actual: int):
    shape = "x".join(str(d) for d in dims)
    expected = math.prod(dims)
    kind = "truncated" if actual < expected else "over-long"
    raise DatasetError(
        f"{path}: {kind} IDX file: shape {shape} needs {expected} data bytes after the"
        f" {header_bytes}-byte header, found {actual}"
    )
