"""``python -m dlx`` (also what ``torchrun -m dlx`` runs)."""

from dlx.cli import console_main

console_main()
