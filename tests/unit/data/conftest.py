"""Shared fixtures for the data tests: an isolated environment, a tiny
generated MNIST-style dataset with its spec, and a local HTTP mirror."""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from dlx.data import vision
from dlx.data.idx import write_idx
from dlx.data.vision import STANDARD_FILE_NAMES, DatasetSpec, file_md5, standard_files

TINY_TRAIN = 20
TINY_TEST = 10


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Keep every search location inside tmp_path, and keep proxies away."""
    home = tmp_path / "home"
    cwd = tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    for name in ("DLX_DATA", "DLX_MIRROR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    # urllib would send even 127.0.0.1 through a configured proxy.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(vision, "SYSTEM_DATA_ROOT", tmp_path / "system")
    return tmp_path


def make_tiny_files(directory: Path, gzip: bool = True, label_offset: int = 0) -> dict[str, Path]:
    """Write a tiny MNIST-style dataset (20 train, 10 test images) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)

    def images(count):
        return torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)

    tensors = {
        "train_images": images(TINY_TRAIN),
        "train_labels": (torch.arange(TINY_TRAIN) % 10 + label_offset).to(torch.uint8),
        "test_images": images(TINY_TEST),
        "test_labels": (torch.arange(TINY_TEST) % 10).to(torch.uint8),
    }
    paths = {}
    for role, tensor in tensors.items():
        name = STANDARD_FILE_NAMES[role]
        if not gzip:
            name = name.removesuffix(".gz")
        paths[role] = write_idx(directory / name, tensor, gzip=gzip)
    return paths


@pytest.fixture
def tiny_source(tmp_path) -> dict[str, Path]:
    """The tiny dataset's .gz files, as a mirror would publish them."""
    return make_tiny_files(tmp_path / "source")


@pytest.fixture
def tiny_spec(tiny_source) -> DatasetSpec:
    """A spec for the tiny dataset, with the md5s of its generated files."""
    md5 = {role: file_md5(path) for role, path in tiny_source.items()}
    return DatasetSpec(
        name="tiny",
        files=standard_files(md5),
        mirrors=("http://127.0.0.1:9/unused/",),
        classes=tuple("abcdefghij"),
        torchvision_dir="Tiny",
        train_count=TINY_TRAIN,
        test_count=TINY_TEST,
    )


@dataclass
class Route:
    """How the test server answers under one URL prefix."""

    files: dict[str, bytes]
    mode: str = "ok"  # "ok", "truncate" (short body, full Content-Length), "no-length-cut"


@dataclass
class MirrorServer:
    """A local HTTP server; ``add`` publishes files under a prefix."""

    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def add(self, prefix: str, files: dict[str, bytes], mode: str = "ok") -> str:
        self.routes[prefix] = Route(files, mode)
        return f"http://127.0.0.1:{self.port}/{prefix}/"


def _make_handler(server: MirrorServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            server.hits.append(self.path)
            prefix, _, name = self.path.strip("/").partition("/")
            route = server.routes.get(prefix)
            if route is None or name not in route.files:
                self.send_error(404)
                return
            body = route.files[name]
            self.send_response(200)
            if route.mode != "no-length-cut":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if route.mode == "ok":
                self.wfile.write(body)
            else:
                # Send half, then close: HTTP/1.0, so the connection ends here.
                self.wfile.write(body[: len(body) // 2])

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def mirror_server():
    """A threaded HTTP server on 127.0.0.1 (free port), shut down afterwards."""
    state = MirrorServer(port=0)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    state.port = httpd.server_address[1]
    # A short poll interval makes shutdown (and so each test) fast.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def closed_port_url() -> str:
    """A base URL on which nothing listens: connections are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead/"
