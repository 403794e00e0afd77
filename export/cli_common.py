"""Argument helpers shared by the export command-line entry points."""

from __future__ import annotations

import argparse


def parse_hw(text: str) -> tuple[int, int]:
    """ "HxW" -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 256x512), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def add_recipe_args(parser: argparse.ArgumentParser, allow_random_init: bool = False) -> None:
    """``--config-file``, ``--checkpoint`` (or, with ``allow_random_init``, ``--random-init`` instead)
    and trailing ``key=value`` overrides."""
    parser.add_argument(
        "--config-file", required=True, help="LazyConfig recipe (.py) the model was trained with"
    )
    weights = parser.add_mutually_exclusive_group(required=True) if allow_random_init else parser
    weights.add_argument(
        "--checkpoint",
        required=not allow_random_init,
        help="model weights (.pth: state dict or {'model': ...})",
    )
    if allow_random_init:
        weights.add_argument(
            "--random-init",
            action="store_true",
            help="no checkpoint: the recipe's freshly initialised (untrained) model, to check deployability",
        )
    parser.add_argument("opts", nargs="*", default=[], help="recipe overrides, key=value")
