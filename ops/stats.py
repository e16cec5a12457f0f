"""Statistics the dashboard and the bench both report, defined once."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], pct: float) -> float:
    """Return the nearest-rank ``pct`` percentile of ``values``: the smallest value that ``pct`` % of them reach.

    Always one of the observed values (as CloudWatch's ``p95`` statistic), so "95 % of the uploads took at most the
    p95" holds for any number of samples: the p95 of ``[10, 20]`` is 20, the p50 of ``[10, 20, 30, 40, 50]`` is 30.

    Raises
    ------
    ValueError
        When ``values`` is empty or ``pct`` is outside (0, 100].
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be above 0 and at most 100, got {pct}")
    rank = math.ceil(pct / 100 * len(ordered))
    return float(ordered[rank - 1])
