"""Multi-node torchrun, tested on one machine as two nodes (c10d rendezvous on 127.0.0.1).

Two "nodes" of one process each must write one run directory and end with the
same weights as two processes on one node: DDP averages the same two shards'
gradients either way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.cnn_helpers import ROOT, TINY, only_run, same_weights, weights

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TRAIN = ["-m", "dlx", "train-cnn", *TINY, "--epochs", "1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def test_two_nodes_write_one_run_with_the_weights_of_one_node(tmp_path):
    one_node, two_nodes = tmp_path / "one-node", tmp_path / "two-nodes"
    single = subprocess.run([TORCHRUN, "--standalone", "--nproc-per-node", "2", *TRAIN, "--runs-dir", one_node],
                            capture_output=True, text=True, env=environment(), cwd=ROOT, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]

    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen([TORCHRUN, "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "dlx-test",
                               *TRAIN, "--runs-dir", str(two_nodes)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                              cwd=ROOT)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]

    run = only_run(two_nodes)  # one run directory for both nodes
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    assert same_weights(weights(run), weights(only_run(one_node)))
