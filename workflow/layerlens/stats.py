"""Statistics over seeds and dev examples.

- :func:`summarize`: n, mean, sample sd (ddof=1) and the 95% t interval of the mean over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float
    ci_lo: float
    ci_hi: float

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}{k}": getattr(self, k) for k in ("n", "mean", "sd", "ci_lo", "ci_hi")}


def summarize(values, level: float = 0.95) -> Summary:
    """Mean, sample sd and the t interval of the mean; NaNs (diverged runs) are left out, not averaged."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = x.size
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)
