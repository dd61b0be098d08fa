"""Reading files safely (issue 29): regular files only, bounded, never blocking; unique YAML keys; memory bounds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlx.errors import ConfigError, DlxError
from dlx.safeio import open_regular, read_bytes, sha256_file
from dlx.yamlfile import safe_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path):
    fifo = tmp_path / "meta.json"
    os.mkfifo(fifo)
    with pytest.raises(DlxError, match="FIFO"):
        read_bytes(fifo, 100, "meta file")  # would block forever with a plain open()


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null"])
def test_devices_are_refused(tmp_path, target):
    link = tmp_path / "config.yaml"
    link.symlink_to(target)
    with pytest.raises(DlxError, match="device"):
        open_regular(link, 100)


def test_size_limit_and_directory(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(DlxError, match="limit"):
        read_bytes(tmp_path / "big", 100)
    with pytest.raises(DlxError, match="directory"):
        read_bytes(tmp_path, 100)
    with pytest.raises(DlxError, match="does not exist"):
        read_bytes(tmp_path / "nowhere", 100)


def test_fingerprint_streams_the_content_hash(tmp_path):
    data = tmp_path / "d.tsv"
    data.write_bytes(b"a\tb\n" * 1000)
    first = sha256_file(data, 1 << 20)
    os.utime(data, (1, 1))
    second = sha256_file(data, 1 << 20)
    assert first["sha256"] == second["sha256"] and first["mtime_ns"] != second["mtime_ns"]


@pytest.mark.parametrize("text,key", [
    ("a: 1\nb: 2\na: 3\n", "'a'"),
    ("optim:\n  lr: 0.1\n  lr: 0.2\n", "'lr'"),
    ("a: {b: 1, b: 2}\n", "'b'"),
    ("sweep:\n  grid: {optim.lr: [1], optim.lr: [2]}\n", "'optim.lr'"),
])
def test_duplicate_yaml_keys_are_errors_naming_key_and_line(text, key):
    with pytest.raises(ConfigError, match=key) as caught:
        safe_yaml(text, "f.yaml")
    assert "line" in str(caught.value)


def test_yaml_merge_keys_may_still_override():
    assert safe_yaml("base: &b {p: 1, q: 2}\nrun:\n  <<: *b\n  p: 3\n", "f.yaml")["run"] == {"p": 3, "q": 2}


def test_memory_bound_follows_rlimit_as():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY)); "
            "from dlx.memory import available_bytes; print(*available_bytes(), sep='|')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.strip()
    limit, source = out.split("|")
    assert int(limit) <= 3 << 30 and source in ("RLIMIT_AS", "MemAvailable", "the cgroup's memory.max")


def test_memory_check_refuses_in_one_line():
    from dlx import memory

    with pytest.raises(DlxError) as caught:
        memory.check([("generated examples", 1 << 60), ("parameters", 10)], "dlx train-x")
    text = str(caught.value)
    assert "\n" not in text and "needs about" in text and "may use" in text
    memory.check([("tiny", 1024)])  # fits
