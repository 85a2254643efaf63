"""A-share trading costs: commission with a minimum, stamp duty on sells, transfer fee, slippage.

Rates are a broker's typical retail schedule and every one is configurable. Stamp duty is the
state's and changed on 2023-08-28 (halved from 0.1% to 0.05% on sells; buys pay none since
2008). Each fee is rounded to the cent (half up) as a broker's statement shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# (first day in force, rate on the sell value), newest last.
STAMP_DUTY_SCHEDULE: tuple[tuple[str, float], ...] = (
    ("2008-09-19", 0.001),
    ("2023-08-28", 0.0005),
)


@dataclass(frozen=True)
class Costs:
    """Fees of one order. `slippage` moves the fill price against the trader (a fraction)."""

    commission: float = 0.00025
    min_commission: float = 5.0
    transfer_fee: float = 0.00001
    stamp_duty: tuple[tuple[str, float], ...] = field(default=STAMP_DUTY_SCHEDULE)
    slippage: float = 0.0005

    @classmethod
    def free(cls) -> Costs:
        """No fee and no slippage: the frictionless reference."""
        return cls(0.0, 0.0, 0.0, (("1990-01-01", 0.0),), 0.0)

    def stamp_rates(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """The stamp-duty rate on sells in force on each date (the schedule's first rate before
        its first date)."""
        starts = pd.DatetimeIndex([pd.Timestamp(d) for d, _ in self.stamp_duty])
        rates = np.array([r for _, r in self.stamp_duty], dtype=float)
        pos = starts.searchsorted(pd.DatetimeIndex(dates), side="right") - 1
        return rates[np.clip(pos, 0, None)]
