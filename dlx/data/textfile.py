"""Reading a user's text data files within bounds (torch-free, so the CLI can check them early).

A data file is read line by line with a limit per file and per line, so a
file with one enormous line is refused in one line naming it, before it can
grow into gigabytes of padding.
"""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DatasetError

MAX_FILE_BYTES = 256 << 20  # 256 MiB
MAX_LINE_CHARS = 4096
MAX_SEQUENCE_TOKENS = 1024  # per source, target or sentence


def read_lines(path: Path, keep: bool = True) -> list[str]:
    """The file's lines (without newlines), checked against the limits; ``keep=False`` only checks."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data file {path} does not exist" if not path.exists() else f"{path} is not a file")
    lines: list[str] = []
    count = 0
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DatasetError(f"{path} is {size:,} bytes; data files are limited to {MAX_FILE_BYTES:,}")
        with open(path, encoding="utf-8") as handle:
            while True:
                # Read at most one character past the limit: a huge line is never held whole.
                line = handle.readline(MAX_LINE_CHARS + 2)
                if not line:
                    return lines
                count += 1
                text = line.rstrip("\n")
                if len(text) > MAX_LINE_CHARS:
                    raise DatasetError(f"{path} line {count}: longer than {MAX_LINE_CHARS:,} characters "
                                       "(the limit per line)")
                if keep:
                    lines.append(text)
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: not UTF-8 text (invalid byte near line {count + 1})") from None
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror}") from None


def check_files(*paths: str | None) -> None:
    """Check each given data file against the limits without keeping its lines (the CLI's early check)."""
    for path in paths:
        if path:
            read_lines(Path(path), keep=False)
