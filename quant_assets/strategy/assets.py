"""Strategy stage: the day's signals, the paper book (fills, positions, the next day's target
and orders under the risk rules) and the orders for the next trading day."""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field

from quant_assets.calendar import next_trading_day
from quant_assets.strategy.book import REJECTED, BookConfig, book_day
from quant_assets.strategy.broker import PaperBroker
from quant_assets.strategy.ledger import from_ledger, read_breaches, to_ledger
from quant_assets.strategy.risk import RiskLimits
from quant_assets.strategy.signals import screen
from quant_assets.strategy.sizing import METHODS
from quant_assets.strategy.tables import ORDERS, PAPER_BOOK, SIGNALS
from quant_assets.wiring import daily_table, partition_day, previous_day, same_day, window

ADV_DAYS = 20  # average daily traded value for the liquidity rule
RETURN_DAYS = 60  # daily returns for volatility and covariance
ACTION_DAYS = 60  # corporate actions announced this far before their ex-date are applied


class SignalConfig(Config):
    exclude_st: bool = Field(default=True, description="ST shares may not be bought or held")
    min_listed_days: int = Field(default=60, description="trading days since listing to buy")
    blacklist: list[str] = Field(default=[], description="symbols never bought or held")


class BookSettings(Config):
    top_n: int = Field(default=10, description="names in the book")
    n_drop: int | None = Field(default=None, description="names replaced a day at most "
                               "(default top_n // 5)")  # fmt: skip
    method: str = Field(default="equal", description=f"sizing: one of {METHODS}")
    execution: str = Field(default="open", description="paper fills at the 'open' or 'vwap'")
    rebalance_band: float = Field(default=0.01, description="weight gap left alone")
    initial_cash: float = Field(default=1_000_000.0, description="the book's first cash, CNY")
    max_stock_weight: float = 0.15
    max_industry_weight: float = 0.40
    liquidity_share: float = Field(default=0.05, description="of 20-day average traded value")
    volatility_target: float | None = Field(default=0.35, description="annualised; None: off")
    drawdown_brake: float | None = Field(default=0.20, description="drawdown that halves "
                                         "the invested share; None: off")  # fmt: skip
    blacklist: list[str] = Field(default=[], description="never bought or held")

    def book(self) -> BookConfig:
        limits = RiskLimits(max_stock_weight=self.max_stock_weight,
                            max_industry_weight=self.max_industry_weight,
                            liquidity_share=self.liquidity_share,
                            volatility_target=self.volatility_target,
                            drawdown_brake=self.drawdown_brake,
                            blacklist=tuple(self.blacklist))  # fmt: skip
        return BookConfig(self.top_n, self.n_drop, self.method, self.rebalance_band,
                          self.initial_cash, limits)  # fmt: skip


@daily_table(
    SIGNALS,
    group="strategy",
    ins={
        "predictions": same_day(columns=["symbol", "score", "probability", "confidence"]),
        "raw_daily_bars": same_day(),
        "universe": same_day(columns=["symbol", "board", "list_date"]),
    },
    check_specs=[
        AssetCheckSpec(
            "signals_cover_predictions",
            asset="signals",
            blocking=True,
            description="Every scored stock is ranked once, with a reason where it cannot be bought.",
        )
    ],
)
def signals(
    context: AssetExecutionContext,
    config: SignalConfig,
    predictions: pd.DataFrame,
    raw_daily_bars: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """The day's scored stocks ranked, each marked buyable and holdable or not, and why."""
    day = partition_day(context)
    out = screen(predictions, raw_daily_bars, universe, day, config.exclude_st,
                 config.min_listed_days, tuple(config.blacklist))  # fmt: skip
    excluded = out.loc[~out["buyable"], "note"].str.split("; ").explode().value_counts()
    yield Output(out.assign(date=day), metadata={
        "scored": len(out), "buyable": int(out["buyable"].sum()),
        "excluded": MetadataValue.json({k: int(v) for k, v in excluded.items()}),
    })  # fmt: skip
    ok = (len(out) == len(predictions) and out["symbol"].is_unique
          and out.loc[~out["buyable"], "note"].str.len().gt(0).all())  # fmt: skip
    yield AssetCheckResult(
        passed=bool(ok), metadata={"rows": len(out), "predictions": len(predictions)}
    )


@daily_table(
    PAPER_BOOK,
    group="strategy",
    ins={
        "previous": previous_day("paper_book"),
        "signals": same_day(columns=["symbol", "score", "buyable", "holdable"]),
        "raw_daily_bars": window(ADV_DAYS),
        "adjusted_bars": window(RETURN_DAYS, columns=["date", "symbol", "close"]),
        "raw_corporate_actions": window(ACTION_DAYS),
        "universe": same_day(columns=["symbol", "industry", "board"]),
    },
    check_specs=[
        AssetCheckSpec(
            "book_consistent",
            asset="paper_book",
            blocking=True,
            description="Equity is cash plus the positions at the close to the cent, cash is "
            "not negative, and every buy is whole lots.",
        )
    ],
)
def paper_book(
    context: AssetExecutionContext,
    config: BookSettings,
    previous: pd.DataFrame,
    signals: pd.DataFrame,
    raw_daily_bars: pd.DataFrame,
    adjusted_bars: pd.DataFrame,
    raw_corporate_actions: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """The paper book's day: yesterday's orders filled at today's open, corporate actions,
    positions at the close, and tomorrow's target and orders under the risk rules."""
    day = partition_day(context)
    cfg = config.book()
    account, pending, peak = from_ledger(previous, cfg.initial_cash)
    today = raw_daily_bars[raw_daily_bars["date"] == day]
    adv = raw_daily_bars.groupby("symbol")["amount"].mean()
    info = universe.set_index("symbol")[["industry", "board"]].assign(adv=adv)
    closes = adjusted_bars.pivot(index="date", columns="symbol", values="close")
    acts = raw_corporate_actions
    acts = acts[
        (pd.to_datetime(acts["ex_date"]) == day) & (pd.to_datetime(acts["announce_date"]) <= day)
    ]
    broker = PaperBroker(execution=config.execution)  # type: ignore[arg-type]
    out = book_day(day, account, pending, peak, today, acts, signals.set_index("symbol"), info,
                   closes.pct_change(fill_method=None).iloc[1:], cfg, broker)  # fmt: skip
    rows = to_ledger(day, out, today.set_index("symbol")["close"])
    fees = out.fills[["commission", "stamp_duty", "transfer_fee"]].to_numpy().sum()
    yield Output(rows, metadata={
        "status": out.status,
        "equity": round(float(out.equity), 2),
        "cash": round(out.account.cash, 2),
        "drawdown": round(float(out.equity / out.peak_equity) - 1.0, 4),
        "day_pnl": round(float(out.equity) - _previous_equity(previous, cfg.initial_cash), 2),
        "invested": round(1.0 - out.account.cash / float(out.equity), 4) if out.equity else 0.0,
        "limit_events": sum(" held " in n for n in out.notes),
        "positions": len(out.account.shares),
        "fills": len(out.fills), "unfilled": len(out.unfilled), "fees": round(float(fees), 2),
        "orders_for_next_day": len(out.orders),
        "target_cash_left": round(float(out.equity) - float(out.target["value"].sum()), 2),
        "breaches": MetadataValue.md("\n".join(f"- {b.describe()}" for b in out.breaches) or "none"),
        "notes": MetadataValue.md("\n".join(f"- {n}" for n in out.notes) or "none"),
    })  # fmt: skip
    held = float(rows.loc[rows["kind"] == "position", "value"].sum())
    gap = abs(out.account.cash + held - out.equity)
    buys = out.fills.loc[out.fills["side"] == "buy", "shares"]
    yield AssetCheckResult(
        passed=bool(gap < 0.005 and out.account.cash_cents >= 0 and (buys % 100 == 0).all()),
        metadata={"equity_gap": float(gap), "cash": out.account.cash, "buys": len(buys)},
    )


def _previous_equity(previous: pd.DataFrame, initial_cash: float) -> float:
    eq = previous.loc[previous["kind"] == "equity", "value"]
    return float(eq.iloc[0]) if len(eq) else initial_cash


@daily_table(
    ORDERS,
    group="strategy",
    ins={"paper_book": same_day()},
    check_specs=[
        AssetCheckSpec(
            "risk_check",
            asset="orders",
            blocking=True,
            description="The day's target portfolio passed every hard risk rule (else: no "
            "orders, and the breaches are listed here).",
        )
    ],
)
def orders(context: AssetExecutionContext, paper_book: pd.DataFrame) -> Iterator:
    """The orders for the next trading day, with the reason for each: what a broker receives
    (the paper book fills them itself)."""
    day = partition_day(context)
    rows = paper_book[paper_book["kind"] == "order"]
    out = pd.DataFrame({"date": day, "for_date": next_trading_day(day), "symbol": rows["symbol"],
                        "side": rows["side"], "shares": rows["shares"].astype("uint64"),
                        "reason": rows["reason"]})  # fmt: skip
    status = paper_book.loc[paper_book["kind"] == "status", "reason"]
    status = status.iloc[0] if len(status) else "no trade"
    listed = [b.describe() for b in read_breaches(paper_book) if b.hard]
    yield Output(out.reset_index(drop=True), metadata={"status": status, "orders": len(out)})
    yield AssetCheckResult(
        passed=status != REJECTED,
        metadata={"status": status, "breaches": MetadataValue.md(
            "\n".join(f"- {b}" for b in listed) or "none")},
    )  # fmt: skip
