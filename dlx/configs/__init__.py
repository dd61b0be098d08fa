"""Per-family config dataclasses (pure data: no torch import here).

``common.py`` holds the sections every trainer shares (run, optimisation);
each family adds its own module. Models and trainers import from here;
the machinery that loads and validates them is ``dlx/config.py``.
"""
