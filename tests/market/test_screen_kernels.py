from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from quant_assets.calendar import TZ
from quant_assets.market import rules
from quant_assets.market.validation.screen_kernels import (
    book_suspects,
    out_of_order_rows,
    strictly_increasing_per_symbol,
    time_flags,
)

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
    lim = None if up is None else (np.zeros(1, int), np.array([up]), np.array([down]))
    return bool(book_suspects(*book, lim, size_max=2**32 - 1)[0])


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
        pytest.param(lambda bp, bs, ap, asz: _set(bs, 3, 2**32), id="size-beyond-uint32"),
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
    # three symbols with their own limits (the third has no bar: NaN) and rows without one
    codes = rng.integers(-1, 3, n)
    up_sym, down_sym = np.array([10.5, 10.05, np.nan]), np.array([9.5, 9.95, np.nan])
    up = np.where(codes >= 0, np.append(up_sym, np.nan)[codes], np.nan)
    up = np.where(np.isnan(up), np.inf, up)
    down = np.where(codes >= 0, np.append(down_sym, np.nan)[codes], np.nan)
    down = np.where(np.isnan(down), -np.inf, down)
    for arrays, values in ((bp, [np.nan, 0.0, 10.6, 10.01]), (ap, [np.nan, 9.4, 9.99])):
        for k in range(LEVELS):
            hit = rng.random(n) < 0.01
            arrays[k][hit] = rng.choice(values, hit.sum())
    for arrays in (bs, asz):
        for k in range(LEVELS):
            hit = rng.random(n) < 0.01
            arrays[k][hit] = rng.choice([0, -5, 2**32, 2**32 - 1], hit.sum())

    def oracle(i: int) -> bool:
        bad = bp[0][i] >= ap[0][i]
        for side_px, side_sz, bids in ((bp, bs, True), (ap, asz, False)):
            present = []
            for k in range(LEVELS):
                px, sz = side_px[k][i], side_sz[k][i]
                bad |= sz < 0 or sz > 2**32 - 1
                if np.isnan(px):
                    bad |= sz != 0
                    continue
                bad |= px <= 0 or sz == 0 or px > up[i] + 1e-6 or px < down[i] - 1e-6
                if present:
                    bad |= px >= present[-1] if bids else px <= present[-1]
                present.append(px)
        return bool(bad)

    expected = np.array([oracle(i) for i in range(n)])
    got = book_suspects(bp, bs, ap, asz, (codes, up_sym, down_sym), size_max=2**32 - 1)
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


NAT = np.iinfo(np.int64).min


def _flagged(t, codes=None) -> list[int]:
    t = np.asarray(t, dtype=np.int64)
    codes = np.zeros(len(t), np.int64) if codes is None else np.asarray(codes)
    return np.flatnonzero(out_of_order_rows(codes, t, int(codes.max(initial=0)) + 1)).tolist()


@pytest.mark.parametrize(
    ("t", "flagged"),
    [
        ([1, 2, 3, 4, 5], []),
        ([1, 2, 2, 3], []),  # equal times are in order (repeats are the duplicate rule's)
        ([1, 2, 3, 2030, 5, 6, 7], [3]),  # one late stamp: itself, not the rows after it
        ([1, 2, 3, -5, 5, 6, 7], [3]),  # one early stamp
        ([2030, 1, 2, 3], [0]),  # late stamp on the first row
        ([1, 2, 3, 4, 9, 5], [4]),  # late stamp next to the last row: still itself
        ([1, 2, 3, 4, 0], [4]),  # early stamp on the last row
        ([3, 1, 4, 5], [1]),  # early stamp next to the first row: itself, not the first row
        ([1, 3, 2], [1]),  # two rows swapped: keep the shorter span (1..2), drop 3
        ([1, 3, 3, 2], [3]),  # ... unless the other run is longer
        ([1, 2, 7, 8, 9, 3, 4, 5, 6, 10], [2, 3, 4]),  # blocks swapped: the shorter block
        ([1, 2, 6, 7, 8, 3, 4, 5, 9], [5, 6, 7]),  # equally long blocks: the later one
        ([5, 4, 3, 2, 1], [1, 2, 3, 4]),  # reversed: all but the first
    ],
)
def test_out_of_order_flags_the_fewest_rows_that_restore_the_order(t, flagged):
    assert _flagged(t) == flagged


def test_out_of_order_keeps_symbols_apart_and_ignores_rows_without_symbol_or_time():
    t = [1, 100, 2, 50, 3, NAT, 4, 0]
    codes = [0, 1, 0, 1, 0, 0, 0, -1]
    # symbol 0 runs 1, 2, 3, (NaT), 4; symbol 1 runs 100, 50: the later row is flagged
    assert _flagged(t, codes) == [3]


def _oracle_out_of_order(codes: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Row by row from the definition, by trying every subset: per symbol, of the longest sets
    of rows whose times do not fall, the lexicographically first (earliest rows) and the one
    whose reversed rows are lexicographically last (latest rows); the one spanning less time
    is kept, the first on a tie."""
    out = np.zeros(len(t), bool)
    for c in np.unique(codes[codes >= 0]):
        rows = [i for i in np.flatnonzero(codes == c) if t[i] != NAT]
        v = [int(t[i]) for i in rows]
        if not v:
            continue
        longest: list[tuple[int, ...]] = []
        for r in range(len(v), 0, -1):
            longest = [
                comb
                for comb in combinations(range(len(v)), r)
                if all(v[a] <= v[b] for a, b in zip(comb, comb[1:], strict=False))
            ]
            if longest:
                break
        first, last = min(longest), max(longest, key=lambda comb: comb[::-1])
        span = {comb: v[comb[-1]] - v[comb[0]] for comb in (first, last)}
        keep = last if span[last] < span[first] else first
        for k, i in enumerate(rows):
            out[i] = k not in keep
    return out


def test_out_of_order_agrees_with_the_definition_on_random_frames():
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(1, 20))
        codes = rng.integers(-1, 3, n)
        t = rng.integers(0, 8, n).astype(np.int64)  # few values: ties and repeats are common
        t[rng.random(n) < 0.05] = NAT
        got = out_of_order_rows(codes, t, 3)
        np.testing.assert_array_equal(got, _oracle_out_of_order(codes, t))


def test_out_of_order_on_a_long_day_flags_exactly_the_planted_outliers():
    """A day of 3-second snapshots of 300 symbols, interleaved, with a few stamps moved years
    ahead or hours back: only those rows are flagged (and it stays fast)."""
    rng = np.random.default_rng(11)
    per, n_sym = 4_700, 300
    codes = np.tile(np.arange(n_sym), per)
    t = np.repeat(np.arange(per, dtype=np.int64) * 3_000_000_000, n_sym)
    planted = rng.choice(len(t), 40, replace=False)
    t[planted[:20]] += 6 * 365 * 86_400 * 10**9  # in 2030
    t[planted[20:]] -= 10 * 3_600 * 10**9  # ten hours early
    # in order all the same: a late stamp on a symbol's last row, an early one on its first
    position = planted // n_sym
    in_order = np.r_[position[:20] == per - 1, position[20:] == 0]
    got = out_of_order_rows(codes, t, n_sym)
    assert np.flatnonzero(got).tolist() == sorted(planted[~in_order].tolist())


def _time_oracle(ts: pd.Series, day: pd.Timestamp, after_only: bool, now: pd.Timestamp):
    """The time rules row by row with pandas: rules.in_session on the local clock."""
    valid = ts.notna().to_numpy()
    local = ts.dt.tz_localize(None)
    outside = ~rules.in_session(local).to_numpy(dtype=bool) & valid
    d = local.dt.normalize()
    off = ((d > day) if after_only else (d != day)).to_numpy(dtype=bool) & valid
    future = (ts > now).to_numpy(dtype=bool) & valid
    return outside, off, future


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize("after_only", [False, True])
def test_time_flags_agree_with_the_session_rule_row_by_row(zone, after_only):
    rng = np.random.default_rng(3)
    day = pd.Timestamp("2024-03-08")
    # every session edge, a millisecond either side of it, random times over three days
    # (New York changes its offset on 2024-03-10), NaT, and a time before 1970
    edges = [
        pd.Timedelta(rules.tod_ns(t), "ns") + pd.Timedelta(ms, "ms")
        for window in rules.SESSION_WINDOWS
        for t in window[:2]
        for ms in (-1, 0, 1)
    ]
    local = [day + e for e in edges]
    local += list(day + pd.to_timedelta(rng.integers(-86_400, 3 * 86_400, 3_000), "s"))
    ts = pd.Series(
        pd.DatetimeIndex(local).as_unit("ns").tz_localize(zone, nonexistent="shift_forward")
    )
    ts = pd.concat([ts, pd.Series([pd.NaT, pd.Timestamp("1969-12-31 10:00", tz=zone)])])
    ts = ts.reset_index(drop=True)
    now = day + pd.Timedelta(hours=14)
    now = now.tz_localize(zone)
    got = time_flags(
        ts.array.asi8,
        ts.dt.tz_localize(None).array.asi8,
        rules.session_windows_ns(),
        day.value // 86_400_000_000_000,
        after_only,
        now.value,
    )
    for g, want in zip(got, _time_oracle(ts, day, after_only, now), strict=True):
        np.testing.assert_array_equal(g, want)
    assert got[0].any() and not got[0].all()  # both sides of the sessions are exercised
    assert got[1].any() and got[2].any()


def test_time_flags_with_one_offset_match_the_per_row_lookup():
    ts = pd.Series(
        pd.date_range("2024-03-08 09:00", "2024-03-08 15:30", freq="7s", tz=TZ, unit="ns")
    )
    day = pd.Timestamp("2024-03-08").value // 86_400_000_000_000
    args = (rules.session_windows_ns(), day, False, 0)
    shifted = time_flags(ts.array.asi8, 8 * 3_600_000_000_000, *args)
    looked_up = time_flags(ts.array.asi8, ts.dt.tz_localize(None).array.asi8, *args)
    for a, b in zip(shifted, looked_up, strict=True):
        np.testing.assert_array_equal(a, b)
    clock = ts.dt.strftime("%H:%M:%S")
    inside = (
        clock.between("09:25:00", "09:25:59")
        | clock.between("09:30:00", "11:30:00")
        | clock.between("13:00:00", "15:00:59")
    )
    np.testing.assert_array_equal(shifted[0], ~inside.to_numpy())
    assert not shifted[1].any() and shifted[2].all()  # on the day; all after now=1970
