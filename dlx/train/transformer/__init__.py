"""``dlx train-transformer``: the Transformer on seq2seq, labeling and classification tasks.

- ``loop.py``: the explicit training loop (``train``) and one epoch (``run_epoch``);
- ``data.py``: index-sliced batches of a task and the loss on one batch,
  shared by training and evaluation;
- ``decoding.py``: greedy and beam-search decoding;
- ``evaluate.py``: held-out metrics, pictures, summary numbers, and the
  saved-run entry points ``evaluate_run`` (``dlx eval``) and ``translate``
  (``dlx translate``).
"""
