"""Bounds of config fields, declared on the field itself: ``latent_dim: Annotated[int, AT_LEAST_1] = 100``.

:func:`ganvae.config.validate` reads them from each dataclass's annotations (``typing.get_type_hints(cls,
include_extras=True)``), so adding a bounded field touches only its dataclass. Torch-free, like the configs.
A list field's bound applies to each entry; ``non_empty`` also refuses an empty list. Floats must be finite
whether bounded or not.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Bound:
    lo: Optional[float] = None  # smallest allowed value (None = no lower bound)
    hi: Optional[float] = None  # largest allowed value (None = no upper bound)
    lo_open: bool = False  # True: the value must be above lo, not equal to it
    hi_open: bool = False  # True: the value must be below hi, not equal to it
    says: str = ""  # what a valid value is, in the error's words ("at least 1")
    non_empty: bool = False  # a list field: at least one entry when given
    empty_says: str = "a non-empty list"  # the error's words for an empty list

    def allows(self, v: float) -> bool:
        return ((self.lo is None or (v > self.lo if self.lo_open else v >= self.lo))
                and (self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)))

    def listed(self) -> "Bound":
        """The same bound for a list of values that must not be empty (layer widths, channels)."""
        return Bound(self.lo, self.hi, self.lo_open, self.hi_open, self.says, True, self.empty_says)


AT_LEAST_1 = Bound(1, says="at least 1")
AT_LEAST_0 = Bound(0, says="0 or more")
POSITIVE = Bound(0, lo_open=True, says="positive")
PROBABILITY = Bound(0, 1, hi_open=True, says="in [0, 1)")
WIDTHS = AT_LEAST_1.listed()  # layer widths and channel counts: a non-empty list of sizes of at least 1


def field_bounds(cls: type) -> dict[str, Bound]:
    """Field name -> its declared bound, for the dataclass ``cls`` (inherited fields included)."""
    out: dict[str, Bound] = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        found = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Bound)]
        if found:
            out[name] = found[0]
    return out

