"""``python -m dlx`` (also what ``torchrun -m dlx`` runs)."""

from dlx.cli import main

main()
