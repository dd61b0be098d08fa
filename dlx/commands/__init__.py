"""Subcommands of ``dlx``, one module per area (no torch imports at module level)."""
