"""Downloading from mirrors: a real HTTP server on 127.0.0.1 serves tiny
generated IDX files, healthy, corrupted, truncated or missing."""

from __future__ import annotations

import pytest

from dlx.data import vision
from dlx.errors import DatasetError


def published(tiny_source) -> dict[str, bytes]:
    """The tiny dataset's files as a mirror serves them: name -> bytes."""
    return {path.name: path.read_bytes() for path in tiny_source.values()}


def leftovers(directory) -> list[str]:
    """Temporary download files that should never outlive a fetch."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_fetch_then_load(tmp_path, mirror_server, tiny_spec, tiny_source):
    url = mirror_server.add("good", published(tiny_source))
    dest = tmp_path / "dest"
    assert vision.fetch(tiny_spec, dest, mirrors=[url], progress=True) == dest
    for remote in tiny_spec.files.values():
        assert vision.file_md5(dest / remote.name) == remote.md5
    assert leftovers(dest) == []
    data = vision.load(tiny_spec, dest, download=False)
    assert data.source == dest and data.train_images.shape == (20, 28, 28)
    # Files already present with the right md5 are not downloaded again.
    hits = len(mirror_server.hits)
    vision.fetch(tiny_spec, dest, mirrors=[url], progress=False)
    assert len(mirror_server.hits) == hits


def test_load_downloads_when_missing(tmp_path, mirror_server, tiny_spec, tiny_source, monkeypatch):
    url = mirror_server.add("good", published(tiny_source))
    data = vision.load(tiny_spec, tmp_path / "root", mirrors=[url], progress=False)
    assert data.source == tmp_path / "root" / "tiny"
    # Without data_dir the download goes to $DLX_DATA/<name>...
    monkeypatch.setenv("DLX_DATA", str(tmp_path / "env"))
    assert vision.load(tiny_spec, mirrors=[url], progress=False).source == tmp_path / "env" / "tiny"
    # ...or, with no $DLX_DATA, to the cache (here $XDG_CACHE_HOME).
    monkeypatch.delenv("DLX_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    data = vision.load(tiny_spec, mirrors=[url], progress=False)
    assert data.source == tmp_path / "xdg" / "dlx" / "tiny"


def test_checksum_mismatch_leaves_nothing(tmp_path, mirror_server, tiny_spec, tiny_source):
    files = published(tiny_source)
    name = "train-images-idx3-ubyte.gz"
    files[name] = files[name][:-1] + bytes([files[name][-1] ^ 1])
    url = mirror_server.add("bad", files)
    dest = tmp_path / "dest"
    pattern = f"could not download {name}: .*checksum mismatch"
    with pytest.raises(DatasetError, match=pattern) as info:
        vision.fetch(tiny_spec, dest, mirrors=[url], progress=False)
    assert "\n" not in str(info.value)
    assert not (dest / name).exists()
    assert leftovers(dest) == []


def test_dead_mirrors_are_skipped(tmp_path, mirror_server, closed_port_url, tiny_spec, tiny_source):
    missing = mirror_server.add("empty", {})  # answers 404 for everything
    good = mirror_server.add("good", published(tiny_source))
    dest = tmp_path / "dest"
    vision.fetch(tiny_spec, dest, mirrors=[closed_port_url, missing, good], progress=False)
    assert vision.load(tiny_spec, dest, download=False).test_labels.shape == (10,)
    assert sum(hit.startswith("/empty/") for hit in mirror_server.hits) == 4
    assert sum(hit.startswith("/good/") for hit in mirror_server.hits) == 4


@pytest.mark.parametrize(
    "mode, reason",
    [("truncate", r"truncated: received \d+ of \d+ bytes"), ("no-length-cut", "checksum mismatch")],
)
def test_truncated_body_is_rejected(tmp_path, mirror_server, tiny_spec, tiny_source, mode, reason):
    cut = mirror_server.add("cut", published(tiny_source), mode=mode)
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match=reason):
        vision.fetch(tiny_spec, dest, mirrors=[cut], progress=False)
    assert list(dest.iterdir()) == []
    # With a healthy mirror after it, the download succeeds.
    good = mirror_server.add("good", published(tiny_source))
    vision.fetch(tiny_spec, dest, mirrors=[cut, good], progress=False)
    assert vision.load(tiny_spec, dest, download=False).train_labels.shape == (20,)


def test_every_failure_is_named_on_one_line(tmp_path, mirror_server, closed_port_url, tiny_spec):
    missing = mirror_server.add("empty", {})
    with pytest.raises(DatasetError) as info:
        vision.fetch(
            tiny_spec, tmp_path / "dest", mirrors=[closed_port_url, missing], progress=False
        )
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("could not download train-images-idx3-ubyte.gz: ")
    assert f"{closed_port_url}train-images-idx3-ubyte.gz: " in message
    assert "refused" in message.lower()
    assert f"{missing}train-images-idx3-ubyte.gz: HTTP 404" in message


def test_failed_download_in_load_lists_the_search(tmp_path, closed_port_url, tiny_spec):
    pattern = "not found locally .*searched: .*download failed: could not download"
    with pytest.raises(DatasetError, match=pattern):
        vision.load(tiny_spec, tmp_path / "root", mirrors=[closed_port_url], progress=False)


def test_dlx_mirror_env_overrides_official(
    tmp_path, mirror_server, closed_port_url, tiny_spec, tiny_source, monkeypatch
):
    good = mirror_server.add("good", published(tiny_source))
    monkeypatch.setenv("DLX_MIRROR", f"{closed_port_url}, {good}")
    vision.fetch(tiny_spec, tmp_path / "dest", progress=False)
    assert sum(hit.startswith("/good/") for hit in mirror_server.hits) == 4


def test_file_url_mirror(tmp_path, tiny_spec, tiny_source):
    source = tiny_source["train_images"].parent
    vision.fetch(tiny_spec, tmp_path / "dest", mirrors=[source.as_uri()], progress=False)
    assert vision.load(tiny_spec, tmp_path / "dest", download=False).name == "tiny"
