"""Which of two derived models is the parent, where the weights say so: a narrower residual
stream is cut from a wider one (slicing and width pruning remove dimensions; a widened copy is a
rewrite, decided as the same model before this is asked), fewer heads or neurons are pruned from
more, and a quantized model is made from one of higher precision. Depth does not say (pruned
copies are shallower, stacked ones deeper), and fine-tunes are not ordered: no weight statistic
ordered the evaluation's fine-tunes reliably (experiments/README.md), so none is reported.
"""

from __future__ import annotations

import re
from typing import Optional

from ..fingerprint import Fingerprint
from .circuits import residual_width

# Bits per weight of the dominant dtype's family: what "higher precision" compares.
_BITS = (
    (r"^F64$", 64),
    (r"^F32$", 32),
    (r"^(BF16|F16)$", 16),
    (r"^Q8", 8.5),
    (r"^Q6", 6.6),
    (r"^Q5", 5.5),
    (r"^(Q4|IQ4)", 4.5),
    (r"^(Q3|IQ3)", 3.4),
    (r"^(Q2|IQ2|IQ1|TQ)", 2.6),
)


def _bits(fp: Fingerprint) -> Optional[float]:
    """Bits per weight of the dtype most of the checkpoint's tensors have (None: unknown)."""
    dtypes = fp.meta.get("dtypes") or {}
    if not dtypes:
        return None
    main = max(dtypes, key=lambda k: dtypes[k])
    return next((bits for rx, bits in _BITS if re.search(rx, str(main))), None)


def _counts(fp: Fingerprint) -> Optional[tuple[int, int, int]]:
    """(query heads, kv heads, widest MLP) where the invariants record them."""
    inv = fp.invariants
    if inv is None or inv.geometry is None:
        return None
    return inv.geometry.heads, inv.geometry.kv_heads, int(inv.neurons.max())


def direction(a: Fingerprint, b: Fingerprint) -> Optional[tuple[str, str]]:
    """("a" or "b", why) for the parent of a derived pair; None where the evidence does not say."""
    wa, wb = residual_width(a), residual_width(b)
    if wa and wb and wa != wb:
        wide, narrow = ("a", "b") if wa > wb else ("b", "a")
        return (
            wide,
            f"{narrow}'s residual stream ({min(wa, wb)}) is narrower: sliced or pruned from "
            f"{wide}'s ({max(wa, wb)})",
        )
    ca, cb = _counts(a) or (0, 0, 0), _counts(b) or (0, 0, 0)
    nested = all(ca) and all(cb) and ca != cb
    if nested and (all(x >= y for x, y in zip(ca, cb)) or all(x <= y for x, y in zip(ca, cb))):
        big, small = ("a", "b") if sum(ca) > sum(cb) else ("b", "a")
        return big, f"{small} has fewer heads or MLP neurons in the same residual width: pruned from {big}"
    ba, bb = _bits(a), _bits(b)
    if ba is not None and bb is not None and ba != bb:
        high = "a" if ba > bb else "b"
        return (
            high,
            f"{high} has the higher precision ({max(ba, bb):g} vs {min(ba, bb):g} bits per weight): "
            "the other is quantized from it or from its kind",
        )
    return None
