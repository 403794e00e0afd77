"""softlabelseg.modeling: backbones (timm, MiT, tiny), heads and the SemanticSegmentor."""

from .backbone import Backbone, TimmBackbone, load_state_dict_file
from .deeplab import ASPP, DeepLabV3PlusHead
from .hrnet import ConcatFuseHead, HRNetV2Head
from .losses import CrossEntropy, LossByTarget, SoftKL
from .segformer import MixTransformer, SegFormerHead
from .segmentor import SemanticSegmentor
from .tiny import TinyCNN

__all__ = [
    "ASPP", "Backbone", "ConcatFuseHead", "CrossEntropy", "DeepLabV3PlusHead", "HRNetV2Head", "LossByTarget",
    "MixTransformer", "SegFormerHead", "SemanticSegmentor", "SoftKL", "TimmBackbone", "TinyCNN",
    "load_state_dict_file",
]
