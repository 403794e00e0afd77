"""Compiled CPU kernel (placeholder until the C kernel lands): reports itself unavailable."""
from __future__ import annotations


def available() -> bool:
    return False


def soft_resize(*args, **kwargs):
    raise RuntimeError("the compiled softlabel_ops kernel is not available")
