"""The graph family's run folder, and its saved runs' files.

The readers (networkx's bundled graphs, edge-list and label files, the
seeded node split) are shared in ``dlx/data/graphs.py``.
"""

from __future__ import annotations

from pathlib import Path

FAMILY = "graph"  # the checkpoints' family tag and the folder under runs/
FILE_KEYS = ("path", "labels_path")  # data keys that name files


def repoint_files(data, data_dir: str | None) -> None:
    """Point each of ``data``'s files that is set at the file of the same name in ``data_dir``
    (``dlx eval --data-dir``: the run's files moved). Nothing without ``data_dir``."""
    if not data_dir:
        return
    for key in FILE_KEYS:
        if getattr(data, key):
            setattr(data, key, str(Path(data_dir) / Path(getattr(data, key)).name))
