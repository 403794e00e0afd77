"""The segmentor settings every model recipe shares (ImageNet normalisation, ignore value, the loss).

``segmentor(backbone, head, num_classes)`` returns the ``SemanticSegmentor`` LazyCall; ``head`` is a
``deferred`` node (the segmentor builds it from the backbone's ``output_shape()``) whose ``num_classes`` is
``"${..num_classes}"``, so recipes set the class count once with ``model.num_classes``.

The loss is a part: ``model.loss.soft`` (KL divergence on soft targets; ``multi_class``, ``class_weights``,
``loss_weight``) and ``model.loss.hard`` (cross-entropy on hard labels; ``label_smoothing``,
``class_weights``, ``loss_weight``); ``model.loss = L(MyLoss)(...)`` replaces both
(docs/howto/add_a_loss.md).
"""

from softlabelseg.config import LazyCall as L
from softlabelseg.modeling import CrossEntropy, LossByTarget, SemanticSegmentor, SoftKL


def segmentor(backbone, head, num_classes: int = 19):
    return L(SemanticSegmentor)(
        backbone=backbone,
        head=head,
        num_classes=num_classes,
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
        ignore_value=255,
        size_divisibility=None,
        loss=L(LossByTarget)(
            soft=L(SoftKL)(multi_class=True, class_weights=None, loss_weight=1.0),
            hard=L(CrossEntropy)(ignore_value="${...ignore_value}", label_smoothing=0.0, class_weights=None,
                                 loss_weight=1.0),
        ),
    )
