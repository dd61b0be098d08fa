"""``dlx train-cnn``: image classification on the MNIST family (and any N×C×H×W image set).

- ``loop.py``: the explicit training loop (``train``), one epoch (``run_epoch``)
  and the checks a resume must pass;
- ``data.py``: the images as uint8 N×C×H×W tensors on the device (the
  validation split held out of the training images), their normalisation
  and the seeded per-epoch shuffle;
- ``evaluate.py``: metrics of a split (validation per epoch, test once at
  the end), pictures, the embedding projector and ``evaluate_run`` (``dlx eval``).
"""
