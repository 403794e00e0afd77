"""Training-resolution factors as exact fractions: parsed from command lines and CSV files, and labelled."""
from __future__ import annotations

from fractions import Fraction

__all__ = ["factor_label", "parse_factor"]


def parse_factor(text) -> Fraction:
    """'1/8', '0.125', 0.125, Fraction(1, 8) or '1' -> Fraction in (0, 1].

    A decimal reads as the fraction of denominator <= 64 with the same float value when there is one, so
    the float a CSV holds for 1/3 reads back as Fraction(1, 3); use ``float(parse_factor(x))`` for a float.
    """
    exact = Fraction(str(text))
    near = exact.limit_denominator(64)
    f = near if float(near) == float(exact) else exact
    if not 0 < f <= 1:
        raise ValueError(f"factor {text!r} must be in (0, 1]")
    return f


def factor_label(f) -> str:
    """0.25 or Fraction(1, 4) -> '1/4'; factors that are not 1/N print as decimals."""
    f = float(f)
    n = 1 / f
    return f"1/{round(n)}" if abs(n - round(n)) < 1e-9 else f"{f:g}"
