"""The bridge from a weights record to its preset: installs ``video.transforms.create_transform`` as the factory
that ``Weights.transforms()`` calls.

The record lives in ``models/`` (the builders and timm's default cfgs are made from it at import time), and
``models/`` knows nothing of ``video/``; the preset is ``video/``'s, which knows nothing of models. This module
sits above both and joins them once, as ``tokshift_zoo.weights`` installs the builders' weights loader; importing
``tokshift_zoo`` imports both.
"""

from .models.registry import Weights, get_weights, set_transforms_factory
from .video.transforms import create_transform

__all__ = ["Weights", "get_weights"]

set_transforms_factory(create_transform)
