import numpy as np
import pytest

from quant_assets.market.screen_kernels import book_suspects, strictly_increasing_per_symbol

LEVELS = 10


def _book(rows: int = 1):
    """A clean book: bids 10.00, 9.99, ... asks 10.01, 10.02, ... size 100 everywhere."""
    bid_px = [np.full(rows, 10.00 - 0.01 * k) for k in range(LEVELS)]
    ask_px = [np.full(rows, 10.01 + 0.01 * k) for k in range(LEVELS)]
    bid_sz = [np.full(rows, 100, dtype=np.int64) for _ in range(LEVELS)]
    ask_sz = [np.full(rows, 100, dtype=np.int64) for _ in range(LEVELS)]
    return bid_px, bid_sz, ask_px, ask_sz


def _one(change, up=None, down=None) -> bool:
    book = _book()
    change(*book)
    lim = (None, None) if up is None else (np.array([up]), np.array([down]))
    return bool(book_suspects(*book, *lim)[0])


def _set(arrays, k, value):
    arrays[k] = arrays[k].astype(type(value)) if isinstance(value, float) else arrays[k]
    arrays[k][0] = value


def test_a_clean_book_and_empty_deep_levels_are_not_suspects():
    assert not _one(lambda *b: None)

    def empty_tail(bp, bs, ap, asz):
        for k in range(7, LEVELS):
            bp[k][0], bs[k][0], ap[k][0], asz[k][0] = np.nan, 0, np.nan, 0

    assert not _one(empty_tail)
    assert not _one(lambda *b: None, up=11.0, down=9.0)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda bp, bs, ap, asz: _set(bp, 0, 10.01), id="locked"),
        pytest.param(lambda bp, bs, ap, asz: _set(bp, 0, 10.05), id="crossed"),
        pytest.param(lambda bp, bs, ap, asz: _set(bp, 3, 9.99), id="bids-not-falling"),
        pytest.param(lambda bp, bs, ap, asz: _set(ap, 5, 10.02), id="asks-not-rising"),
        pytest.param(lambda bp, bs, ap, asz: _set(bp, 9, 0.0), id="zero-price"),
        pytest.param(lambda bp, bs, ap, asz: _set(ap, 9, -1.0), id="negative-price"),
        pytest.param(lambda bp, bs, ap, asz: _set(bs, 2, 0), id="price-without-size"),
        pytest.param(lambda bp, bs, ap, asz: _set(asz, 2, -100), id="negative-size"),
        pytest.param(lambda bp, bs, ap, asz: _set(bp, 4, np.nan), id="size-without-price"),
    ],
)
def test_every_book_problem_makes_the_row_a_suspect(change):
    assert _one(change)


def test_a_size_that_did_not_parse_is_left_to_the_missing_value_rule():
    # NaN sizes (unparseable) next to a price break no book rule; `missing_value` flags them
    assert not _one(lambda bp, bs, ap, asz: _set(bs, 1, np.nan))


def test_prices_beyond_the_day_limits_are_suspects_and_nan_limits_are_none():
    assert _one(lambda *b: None, up=10.05, down=9.0)  # asks go up to 10.10
    assert _one(lambda *b: None, up=11.0, down=9.95)  # bids go down to 9.91
    assert not _one(lambda *b: None, up=10.10 + 1e-9, down=9.91 - 1e-9)
    assert not _one(lambda *b: None, up=np.nan, down=np.nan)


def test_the_screen_flags_exactly_the_rows_a_plain_rule_check_flags():
    """Random books with random damage against a row-by-row oracle of the same rules."""
    rng = np.random.default_rng(7)
    n = 3_000
    bp, bs, ap, asz = _book(n)
    up, down = np.full(n, 10.5), np.full(n, 9.5)
    for arrays, values in ((bp, [np.nan, 0.0, 10.6, 10.01]), (ap, [np.nan, 9.4, 9.99])):
        for k in range(LEVELS):
            hit = rng.random(n) < 0.01
            arrays[k][hit] = rng.choice(values, hit.sum())
    for arrays in (bs, asz):
        for k in range(LEVELS):
            hit = rng.random(n) < 0.01
            arrays[k][hit] = rng.choice([0, -5], hit.sum())

    def oracle(i: int) -> bool:
        bad = bp[0][i] >= ap[0][i]
        for side_px, side_sz, bids in ((bp, bs, True), (ap, asz, False)):
            present = []
            for k in range(LEVELS):
                px, sz = side_px[k][i], side_sz[k][i]
                bad |= sz < 0
                if np.isnan(px):
                    bad |= sz != 0
                    continue
                bad |= px <= 0 or sz == 0 or px > up[i] + 1e-6 or px < down[i] - 1e-6
                if present:
                    bad |= px >= present[-1] if bids else px <= present[-1]
                present.append(px)
        return bool(bad)

    expected = np.array([oracle(i) for i in range(n)])
    got = book_suspects(bp, bs, ap, asz, up, down)
    assert 0.1 < expected.mean() < 0.9
    np.testing.assert_array_equal(got, expected)


def test_strictly_increasing_per_symbol():
    codes = np.array([0, 1, 0, 1, 2])
    t = np.array([1, 1, 2, 5, 0])
    assert strictly_increasing_per_symbol(codes, t, 3)
    assert not strictly_increasing_per_symbol(codes, np.array([1, 1, 1, 5, 0]), 3)  # repeat
    assert not strictly_increasing_per_symbol(codes, np.array([2, 1, 1, 5, 0]), 3)  # earlier
    assert not strictly_increasing_per_symbol(np.array([0, -1]), np.array([1, 2]), 1)  # no symbol
    nat = np.iinfo(np.int64).min
    assert not strictly_increasing_per_symbol(np.array([0]), np.array([nat]), 1)
