"""DatasetEvaluator protocol and ``inference_on_dataset`` (detectron2's shape)."""

from __future__ import annotations

import datetime
import logging
import time
from collections import OrderedDict
from contextlib import ExitStack, contextmanager

import torch

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_on_dataset"]

logger = logging.getLogger(__name__)


class DatasetEvaluator:
    """Accumulates (inputs, outputs) pairs with ``process`` and summarises them in ``evaluate``."""

    def reset(self):
        pass

    def process(self, inputs, outputs):
        pass

    def evaluate(self):
        return {}


class DatasetEvaluators(DatasetEvaluator):
    """Runs several evaluators; their result dicts are merged (keys must not clash)."""

    def __init__(self, evaluators):
        self._evaluators = list(evaluators)

    def reset(self):
        for e in self._evaluators:
            e.reset()

    def process(self, inputs, outputs):
        for e in self._evaluators:
            e.process(inputs, outputs)

    def evaluate(self):
        results = OrderedDict()
        for e in self._evaluators:
            for k, v in (e.evaluate() or {}).items():
                if k in results:
                    raise KeyError(f"two evaluators produced the result key {k!r}")
                results[k] = v
        return results


@contextmanager
def _inference_context(model):
    """Puts ``model`` in eval mode for the duration, restoring its previous mode."""
    training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training)


def inference_on_dataset(model, data_loader, evaluator, *, log_period: int = 50):
    """Runs ``model`` on every batch of ``data_loader`` and feeds ``evaluator``.

    Args:
        model: callable ``list[dict] -> list[dict]`` (in eval mode: ``[{"sem_seg": (C, H, W)}]``).
        data_loader: iterable of ``list[dict]`` (the test loader's batches of size 1).
        evaluator: a DatasetEvaluator, a list of them, or None (then only timing is measured).
    Returns:
        ``evaluator.evaluate()`` (``{}`` when no evaluator). Inputs the loader skipped (its ``skipped``:
        file -> reason) are logged and handed to evaluators that have ``note_skipped``.
    """
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif isinstance(evaluator, (list, tuple)):
        evaluator = DatasetEvaluators(evaluator)
    evaluator.reset()
    try:
        total = len(data_loader)
    except TypeError:
        total = None
    start = time.perf_counter()
    compute = 0.0
    n = 0
    with ExitStack() as stack:
        if isinstance(model, torch.nn.Module):
            stack.enter_context(_inference_context(model))
        stack.enter_context(torch.no_grad())
        for idx, inputs in enumerate(data_loader):
            t0 = time.perf_counter()
            outputs = model(inputs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            compute += time.perf_counter() - t0
            evaluator.process(inputs, outputs)
            n = idx + 1
            if log_period and n % log_period == 0:
                elapsed = time.perf_counter() - start
                eta = ""
                if total:
                    eta = ", ETA " + str(datetime.timedelta(seconds=int(elapsed / n * (total - n))))
                logger.info(f"Inference done {n}/{total or '?'}: {compute / n:.4f} s/iter model{eta}")
    elapsed = time.perf_counter() - start
    logger.info(
        f"Inference on {n} batches: {datetime.timedelta(seconds=int(elapsed))} total, "
        f"{compute / max(n, 1):.4f} s/iter in the model"
    )
    skipped = dict(getattr(data_loader, "skipped", None) or {})
    if skipped:
        logger.warning(f"{len(skipped)} input(s) could not be read and were left out of the evaluation: "
                       + ", ".join(sorted(skipped)[:20]) + (" ..." if len(skipped) > 20 else ""))
    for e in getattr(evaluator, "_evaluators", [evaluator]):
        if hasattr(e, "note_skipped"):
            e.note_skipped(skipped)
    results = evaluator.evaluate()
    return {} if results is None else results
