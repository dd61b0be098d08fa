"""dlx: train, compare and understand CNNs, attention, Transformers and GANs."""

__version__ = "0.1.0"
