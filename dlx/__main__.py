"""``python -m dlx`` (also what ``torchrun -m dlx`` runs)."""

# Stop signals are handled before anything else is imported, so that Ctrl-C in the
# first moments ends with 130 and one line, not a traceback (dlx/signals.py).
from dlx import signals

signals.startup()

from dlx.cli import console_main  # noqa: E402

console_main()
