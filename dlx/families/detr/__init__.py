"""DETR: object detection as set prediction with a Transformer (``dlx train-detr``)."""
