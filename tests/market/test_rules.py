import numpy as np
import pytest

from quant_assets.market.rules import listing_limits

NONE = (np.inf, np.inf)


@pytest.mark.parametrize(
    ("board", "listed", "day", "expected"),
    [
        ("star", "2019-07-22", 1, NONE),  # STAR's first listings: five days without a limit
        ("star", "2021-03-01", 5, NONE),
        ("star", "2021-03-01", 6, None),
        ("chinext", "2020-08-24", 3, NONE),  # ChiNext registration system
        ("chinext", "2019-05-06", 1, (0.44, 0.36)),  # before it: one capped first day
        ("chinext", "2019-05-06", 2, None),
        ("main", "2023-04-10", 2, NONE),  # main boards under full registration
        ("main", "2022-11-01", 1, (0.44, 0.36)),
        ("main", "2022-11-01", 2, None),
        ("main", "2023-04-10", 0, None),  # not listed yet on that day
        ("main", None, 1, None),
    ],
)
def test_listing_limits_follow_the_board_and_the_listing_date(board, listed, day, expected):
    assert listing_limits(board, listed, day) == expected
