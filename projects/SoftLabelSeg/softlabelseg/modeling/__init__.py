"""softlabelseg.modeling: backbones (timm, MiT, tiny), heads and the SemanticSegmentor."""

from .backbone import Backbone, TimmBackbone, load_state_dict_file
from .deeplab import ASPP, DeepLabV3PlusHead
from .hrnet import ConcatFuseHead, HRNetV2Head
from .segformer import MixTransformer, SegFormerHead
from .segmentor import SemanticSegmentor
from .tiny import TinyCNN

__all__ = [
    "ASPP", "Backbone", "ConcatFuseHead", "DeepLabV3PlusHead", "HRNetV2Head", "MixTransformer",
    "SegFormerHead", "SemanticSegmentor", "TimmBackbone", "TinyCNN", "load_state_dict_file",
]
