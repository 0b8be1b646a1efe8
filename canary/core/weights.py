"""Weights as the routers write and read them: percents in, relative weights out, and back.

Called by the HTTPRoute and TrafficSplit routers (``canary.adapters.routers``), which share
nothing else. Pure: no I/O. Exact arithmetic (``Fraction``) so that a split read back from a
route is the percent that was written, whatever the representation (integers, or the
Kubernetes quantities of SMI ``v1alpha1`` such as ``"950m"``).
"""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


def split(canary: int) -> tuple[int, int]:
    """``(stable, canary)`` percents for a canary percent from 0 to 100."""
    if not 0 <= canary <= 100:
        raise ValueError(f"a canary weight is a percent from 0 to 100, not {canary}")
    return 100 - canary, canary


def percent(stable: Fraction | int, canary: Fraction | int) -> int:
    """The canary's share in percent, rounded half up; 0 when neither backend has weight."""
    total = stable + canary
    if total <= 0:
        return 0
    return int(Fraction(100 * canary, total) + Fraction(1, 2))


def parse_quantity(value: object) -> Fraction:
    """A non-negative weight written as an integer or a Kubernetes quantity (``"950m"``,
    ``"1"``, ``"0.5"``, ``"1k"``, ``"1e3"``). Raises ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a weight: {value!r}")
    if isinstance(value, int):
        number = Fraction(value)
    else:
        match = _QUANTITY.match(value.strip())
        if match is None:
            raise ValueError(f"not a quantity: {value!r}")
        number = Fraction(match["number"])
        suffix = match["suffix"] or ""
        if suffix[:1] in ("e", "E"):
            number *= Fraction(10) ** int(suffix[1:])
        else:
            number *= _SUFFIXES[suffix]
    if number < 0:
        raise ValueError(f"a weight cannot be negative: {value!r}")
    return number


def quantity(percent_: int) -> str:
    """A percent as the quantity SMI ``v1alpha1`` expects, in shares of one (``5`` → ``"50m"``,
    ``100`` → ``"1"``, ``0`` → ``"0"``)."""
    if not 0 <= percent_ <= 100:
        raise ValueError(f"a weight is a percent from 0 to 100, not {percent_}")
    if percent_ == 100:
        return "1"
    return "0" if percent_ == 0 else f"{percent_ * 10}m"
