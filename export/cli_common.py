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


def add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-file", required=True, help="LazyConfig recipe (.py) the model was trained with"
    )
    parser.add_argument(
        "--checkpoint", required=True, help="model weights (.pth: state dict or {'model': ...})"
    )
    parser.add_argument("opts", nargs="*", default=[], help="recipe overrides, key=value")
