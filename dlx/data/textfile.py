"""Reading a user's text data files within bounds (torch-free, so the CLI can check them early),
and parsing the three formats the sequence tasks take (text pairs, CoNLL tags, labelled text).

A data file is read line by line with a limit per file and per line, so a
file with one enormous line is refused in one line naming it, before it can
grow into gigabytes of padding.
"""

from __future__ import annotations

from pathlib import Path

from dlx.errors import DatasetError
from dlx.safeio import open_text

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
        # Opened as a regular file only, type and size checked on the open descriptor (dlx/safeio.py):
        # a file swapped for a FIFO after the check above still cannot block.
        with open_text(path, MAX_FILE_BYTES, "data file", DatasetError) as handle:
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


def split_text(text: str, tokenizer: str) -> list[str]:
    """``char``: characters; ``word``: whitespace-separated words."""
    return list(text) if tokenizer == "char" else text.split()


def _check_length(tokens: list[str], path: Path, number: int) -> list[str]:
    if len(tokens) > MAX_SEQUENCE_TOKENS:
        raise DatasetError(f"{path} line {number}: {len(tokens):,} tokens; sequences are limited to "
                           f"{MAX_SEQUENCE_TOKENS:,}")
    return tokens


def read_pairs(path: Path, tokenizer: str) -> list[tuple[list[str], list[str], str]]:
    """``source<TAB>target`` lines (blank lines skipped): (source tokens, target tokens, target text)."""
    examples = []
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DatasetError(f"{path} line {number}: expected source<TAB>target, "
                               f"found {len(parts) - 1} tabs")
        text = parts[1].strip()
        source = _check_length(split_text(parts[0].strip(), tokenizer), path, number)
        target = _check_length(split_text(text, tokenizer), path, number)
        if not source or not target:
            raise DatasetError(f"{path} line {number}: empty source or target")
        examples.append((source, target, text))
    return _nonempty(examples, path, "source<TAB>target lines")


def read_conll(path: Path, tokenizer: str) -> list[tuple[list[str], list[str]]]:
    """``token<TAB>tag`` lines, sentences separated by blank lines (extra middle columns ignored)."""
    examples, tokens, tags = [], [], []
    for number, line in enumerate(read_lines(path) + [""], 1):
        if not line.strip():
            if tokens:
                examples.append((tokens, tags))
                tokens, tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise DatasetError(f"{path} line {number}: expected token<TAB>tag")
        token, tag = parts[0].strip(), parts[-1].strip()
        if not token or not tag:  # an empty tag would be "predicted" by padding: 100% accuracy
            raise DatasetError(f"{path} line {number}: empty {'token' if not token else 'tag'} "
                               "(expected token<TAB>tag, both non-empty)")
        tokens.append(token)
        tags.append(tag)
        _check_length(tokens, path, number)
    return _nonempty(examples, path, "token<TAB>tag sentences")


def read_labelled(path: Path, tokenizer: str) -> list[tuple[list[str], str]]:
    """``text<TAB>label`` lines."""
    examples = []
    for number, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition("\t")
        if not sep or not label.strip() or not text.strip():
            raise DatasetError(f"{path} line {number}: expected text<TAB>label")
        examples.append((_check_length(split_text(text.strip(), tokenizer), path, number), label.strip()))
    return _nonempty(examples, path, "text<TAB>label lines")


def _nonempty(examples: list, path: Path, what: str) -> list:
    if not examples:
        raise DatasetError(f"{path}: no {what} found")
    return examples
