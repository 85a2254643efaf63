"""One trading day of the paper book: what the backtest does each day, for the live pipeline.

After the close of day T: corporate actions of T change the holdings (before T's open), the
orders decided after T-1's close fill at T's open through the broker (sells first), the book
is valued at T's close, and the day's signals decide the orders for T+1:

1. selection with hysteresis (TopkDropout, the backtest's own routine): at most `n_drop`
   names replaced a day, names that may no longer be held (ST, blacklist) sold whatever
   their rank, sells that could not fill kept;
2. sizing of the chosen names (equal, score, inverse volatility or mean-variance), scaled
   by the soft risk rules (volatility target, drawdown brake);
3. the hard risk rules: a portfolio that breaks one is rejected (no orders; the status says
   "rejected" and the breaches say why);
4. orders for the difference between the target (whole lots at T's close) and the holdings,
   leaving positions within `rebalance_band` of their weight alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.market.rules import LOT_SIZE, PRICE_EPS, board_of, limit_pct, price_limits
from quant_assets.strategy.broker import ORDER_COLUMNS, Account, Broker, PaperBroker
from quant_assets.strategy.engine import TRADE_REASONS, dropout
from quant_assets.strategy.risk import Breach, RiskLimits, check_portfolio, exposure_scale
from quant_assets.strategy.sizing import size, to_shares

TRADE, NO_TRADE, REJECTED = "trade", "no trade", "rejected"


@dataclass(frozen=True)
class BookConfig:
    top_n: int = 10
    n_drop: int | None = None  # default: max(1, top_n // 5)
    method: str = "equal"
    rebalance_band: float = 0.01  # leave a position alone within this of its target weight
    initial_cash: float = 1_000_000.0
    limits: RiskLimits = field(default_factory=RiskLimits)


@dataclass
class BookDay:
    """The day's outcome: the account after it, and what happened and was decided."""

    account: Account
    equity: float
    peak_equity: float
    fills: pd.DataFrame
    unfilled: pd.DataFrame
    target: pd.DataFrame  # symbol, weight, shares, price, action, reason
    orders: pd.DataFrame  # for the next trading day
    status: str
    breaches: list[Breach]
    notes: list[str]


def apply_actions(account: Account, actions: pd.DataFrame) -> list[str]:
    """Cash dividends and bonus or split shares of the day's ex-dates on the holdings (bonus
    shares rounded down to whole shares); returns what changed, in words."""
    notes = []
    for a in actions.itertuples(index=False):
        held = account.shares.get(a.symbol, 0.0)
        if held <= 0:
            continue
        cash = float(np.floor(held * float(a.cash_dividend or 0.0) * 100.0 + 0.5))
        growth = (1 + float(a.bonus_ratio or 0.0)) * float(a.split_ratio or 1.0)
        account.cash_cents += cash
        account.shares[a.symbol] = float(np.floor(held * growth + 1e-9))
        notes.append(f"{a.symbol}: {held:.0f} -> {account.shares[a.symbol]:.0f} shares, "
                     f"dividend {cash / 100:.2f} CNY")  # fmt: skip
    return notes


def select(signals: pd.DataFrame, shares: dict[str, float], carried: set[str],
           top_n: int, n_drop: int) -> tuple[list[str], dict[str, str]]:  # fmt: skip
    """The names to hold tomorrow and why each held one is sold (TopkDropout, the backtest's
    routine). `signals` by symbol: score, buyable, holdable."""
    names = pd.Index(sorted(set(signals.index) | set(shares)))
    sig = signals.reindex(names)
    score = sig["score"].to_numpy(float)
    eligible = sig["buyable"].fillna(False).to_numpy(bool)
    holdable = sig["holdable"].fillna(True).to_numpy(bool)
    held = np.array([shares.get(s, 0.0) for s in names])
    to_sell = names.isin(list(carried))
    reason = np.zeros(len(names), np.int64)
    buys = np.empty(len(names), np.int64)
    n = dropout(score, eligible, holdable, held, to_sell, reason, top_n, n_drop, buys)

    sold = {names[i]: TRADE_REASONS.get(int(reason[i]), "kept sell: not filled yesterday")
            for i in np.flatnonzero(to_sell & (held > 0))}  # fmt: skip
    keep = [names[i] for i in np.flatnonzero((held > 0) & ~to_sell)]
    return keep + [names[buys[j]] for j in range(n)], sold


def book_day(
    day: pd.Timestamp,
    account: Account,
    pending: pd.DataFrame,
    peak_equity: float,
    bars: pd.DataFrame,
    actions: pd.DataFrame,
    signals: pd.DataFrame,
    info: pd.DataFrame,
    returns: pd.DataFrame,
    config: BookConfig,
    broker: Broker | None = None,
) -> BookDay:
    """Run day `day` of the book (see the module). `bars`: the day's unadjusted bars;
    `actions`: corporate actions with their ex-date on `day`; `signals` by symbol: score,
    buyable, holdable; `info` by symbol: industry, board, adv; `returns`: recent daily
    returns (days x symbols) for volatility and covariance."""
    broker = broker or PaperBroker()
    account.bought_today = {}
    notes = apply_actions(account, actions)
    fills, unfilled = broker.execute(pending, bars, day, account)
    close = bars.set_index("symbol")["close"]
    notes += limit_events(account, bars)
    values = pd.Series(account.shares, dtype=float) * close.reindex(list(account.shares))
    equity = account.cash + float(values.fillna(0.0).sum())
    peak = max(peak_equity, equity)
    carried = set(unfilled.loc[unfilled["side"] == "sell", "symbol"])
    n_drop = max(1, config.top_n // 5) if config.n_drop is None else config.n_drop
    names, sold = select(signals, account.shares, carried, config.top_n, n_drop)
    current = (values / equity).reindex(names).fillna(0.0) if equity > 0 else None
    hist = returns.reindex(columns=names)
    sized = size(signals["score"].reindex(names).fillna(signals["score"].min()), config.method,
                 returns=hist, info=info, previous=current, limits=config.limits,
                 equity=equity)  # fmt: skip
    predicted = _predicted_vol(sized.weights, hist)
    scale, soft = exposure_scale(predicted, equity / peak - 1.0, config.limits)
    weights = sized.weights * scale
    notes += sized.notes + ([sized.fallback] if sized.fallback else [])
    breaches = check_portfolio(weights, info, equity, config.limits)
    target, _ = to_shares(weights, close.reindex(names), equity)
    target = target.rename_axis("symbol").reset_index()
    if breaches:
        status, orders = REJECTED, pd.DataFrame(columns=ORDER_COLUMNS)
    else:
        orders = _orders(target, account, sold, equity, config.rebalance_band)
        status = TRADE if len(orders) else NO_TRADE
    target["action"] = _actions(target, account, orders)
    return BookDay(account, equity, peak, fills, unfilled, target, orders, status,
                   breaches + soft, notes)  # fmt: skip


def limit_events(account: Account, bars: pd.DataFrame) -> list[str]:
    """Holdings that could not be traded at today's close: suspended, or sealed at a price
    limit (position monitoring: a limit-down holding may not be sellable tomorrow)."""
    b = bars.set_index("symbol").reindex(list(account.shares))
    if b.empty:
        return []
    st = b["is_st"].fillna(False).astype(bool)
    boards = pd.Series([board_of(s) for s in b.index], index=b.index)
    up, down = price_limits(b["preclose"], limit_pct(boards, st))
    events = []
    for sym in b.index:
        if bool(b.at[sym, "is_suspended"]) if pd.notna(b.at[sym, "is_suspended"]) else True:
            events.append(f"{sym} held while suspended")
        elif b.at[sym, "close"] <= down[sym] + PRICE_EPS:
            events.append(f"{sym} held at limit-down ({b.at[sym, 'close']:.2f})")
        elif b.at[sym, "close"] >= up[sym] - PRICE_EPS:
            events.append(f"{sym} held at limit-up ({b.at[sym, 'close']:.2f})")
    return events


def _predicted_vol(weights: pd.Series, returns: pd.DataFrame) -> float | None:
    """Annualised volatility of the weighted book over the recent returns."""
    if returns.shape[0] < 10 or weights.sum() <= 0:
        return None
    book = returns.reindex(columns=weights.index).fillna(0.0) @ weights
    return float(book.std(ddof=1) * np.sqrt(252))


def _orders(target: pd.DataFrame, account: Account, sold: dict[str, str], equity: float,
            band: float) -> pd.DataFrame:  # fmt: skip
    rows = []
    for sym, reason in sold.items():
        rows.append((sym, "sell", account.shares.get(sym, 0.0), reason))
    t = target.set_index("symbol")
    for sym, r in t.iterrows():
        held = account.shares.get(sym, 0.0)
        delta = float(r["shares"]) - held
        if held > 0 and abs(delta) * float(r["price"]) <= band * equity:
            continue
        if delta >= LOT_SIZE:
            reason = "entered the top-N" if held == 0 else "rebalanced to its target weight"
            rows.append((sym, "buy", float(delta // LOT_SIZE * LOT_SIZE), reason))
        elif delta <= -LOT_SIZE:
            rows.append(
                (
                    sym,
                    "sell",
                    float(-delta // LOT_SIZE * LOT_SIZE),
                    "rebalanced to its target weight",
                )
            )
    return pd.DataFrame(rows, columns=ORDER_COLUMNS)


def _actions(target: pd.DataFrame, account: Account, orders: pd.DataFrame) -> list[str]:
    side = orders.groupby("symbol")["side"].first() if len(orders) else pd.Series(dtype=str)
    out = []
    for sym in target["symbol"]:
        held = account.shares.get(sym, 0.0) > 0
        s = side.get(sym)
        out.append("buy" if s == "buy" and not held else "add" if s == "buy" else
                   "trim" if s == "sell" else "hold" if held else "wait")  # fmt: skip
    return out
