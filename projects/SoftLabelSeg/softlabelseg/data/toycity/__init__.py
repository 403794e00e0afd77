"""ToyCity: a procedurally generated street-scene dataset in the Cityscapes layout (generator package).

``canvas`` (camera and paired colour / class buffers), ``objects`` (street furniture, vehicles, people),
``scene`` (one scene's layout, clean or cluttered), ``generator`` (the dataset on disk, generated once and
atomically). The reader that registers it sits with the other readers in ``data/datasets/toycity.py``.
"""
from .generator import GENERATOR_VERSION, TOYCITY_SIZES, ToyCityParams, ensure_toycity, generate_toycity
from .scene import SCENE_STYLES

__all__ = ["GENERATOR_VERSION", "SCENE_STYLES", "TOYCITY_SIZES", "ToyCityParams", "ensure_toycity",
           "generate_toycity"]
