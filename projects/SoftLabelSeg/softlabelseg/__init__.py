"""SoftLabelSeg: semantic segmentation trained at reduced resolution on soft labels."""

__version__ = "0.1.0"
