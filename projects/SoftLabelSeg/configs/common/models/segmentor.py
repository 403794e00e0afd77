"""The segmentor settings every model recipe shares (ImageNet normalisation, ignore value, loss options).

``segmentor(backbone, head, num_classes)`` returns the ``SemanticSegmentor`` LazyCall; ``head`` is a
``deferred`` node (the segmentor builds it from the backbone's ``output_shape()``) whose ``num_classes`` is
``"${..num_classes}"``, so recipes set the class count once with ``model.num_classes``.
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.modeling import SemanticSegmentor


def segmentor(backbone, head, num_classes: int = 19):
    return L(SemanticSegmentor)(
        backbone=backbone,
        head=head,
        num_classes=num_classes,
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
        ignore_value=255,
        size_divisibility=None,
        multi_class=True,
        class_weights=None,
        loss_weight=1.0,
    )
