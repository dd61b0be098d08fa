"""``dlx train-gan``: generative adversarial networks (typical, conditional, cycle).

- ``loop.py``: the explicit training loop (``train``), its plan and summary;
- ``steps.py``: the loop's state (``Loop``) and one step of each kind
  (``gan_step`` for gan and conditional, ``cycle_step``);
- ``losses.py``: the adversarial objectives, a registry by name;
- ``data.py``: 2-D mixtures, image sets and domains in memory;
- ``evaluate.py``: metrics, pictures and ``evaluate_run`` (``dlx eval``);
- ``classifier.py``: the evaluation classifier behind the image metrics;
- ``saved.py``: ``sample_run`` (``dlx sample``).
"""
