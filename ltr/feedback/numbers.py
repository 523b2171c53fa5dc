"""How the pages show numbers: one rounding rule, so a page says exactly what the JSON says.

The JSON (`ltr explain --out`) keeps full precision; a page shows each value rounded by the
functions below and carries the full value in a ``data-value`` attribute. Signs are decided on
the *shown* value, so a bar labelled "helps" never reads "0.000".
"""

from __future__ import annotations

#: Decimals of scores and effects on scores.
SCORE_DECIMALS = 3
#: Decimals of percentiles and of effects in percentile points.
PERCENT_DECIMALS = 1
#: Decimals of crowd ratings.
RATING_DECIMALS = 2
#: The minus sign shown (U+2212: as wide as '+', read as "minus").
MINUS = "\u2212"


def _magnitude(value: float, decimals: int) -> str:
    return format(abs(float(value)), f".{decimals}f")


def sign(value: float, decimals: int) -> int:
    """-1, 0 or +1: the sign of `value` as shown with `decimals` decimals."""
    if float(_magnitude(value, decimals)) == 0.0:
        return 0
    return 1 if value > 0 else -1


def signed(value: float, decimals: int) -> str:
    """``+0.136``, ``−0.136`` or ``0.000`` (no sign when it rounds to zero)."""
    prefix = {1: "+", -1: MINUS, 0: ""}[sign(value, decimals)]
    return prefix + _magnitude(value, decimals)


def score(value: float) -> str:
    """A score or an effect on a score."""
    return signed(value, SCORE_DECIMALS)


def points(value: float) -> str:
    """An effect on the percentile, in percentile points."""
    return f"{signed(value, PERCENT_DECIMALS)} pp"


def percent(value: float) -> str:
    """A percentile (share of the other users scored lower)."""
    return f"{_magnitude(value, PERCENT_DECIMALS)}%"


def rating(value: float) -> str:
    """A crowd rating."""
    return signed(value, RATING_DECIMALS)


def effect_word(value: float) -> str:
    """What an effect on the score means for the person: helps, hurts or no effect."""
    return {1: "helps", -1: "hurts", 0: "no effect"}[sign(value, SCORE_DECIMALS)]


def exact(value: float) -> str:
    """The full value for a ``data-value`` attribute: Python's (and JSON's) shortest repr."""
    return repr(float(value))
