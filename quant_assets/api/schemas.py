"""The response bodies of the JSON routes, as Pydantic models for the OpenAPI document only.

The routes return JSON they encoded themselves (the data routes serve cached bytes on the
event loop), so these models never validate or re-encode an answer: they are named in the
routes' `responses=` so clients and generated code know each body's fields, types and units.
Every float that comes from a frame passes `responses.records`, which turns NaN and infinities
into null, so such fields are nullable. `tests/api/test_api_openapi.py` checks real answers
against these schemas, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DAY = "YYYY-MM-DD"
NAN = "null when the stored value is not a finite number"


class Body(BaseModel):
    """A documented body: exactly these fields (`additionalProperties: false` in the schema)."""

    model_config = ConfigDict(extra="forbid")


class PageEnvelope(Body):
    """The paging figures every list answer carries around its `items`."""

    page: int = Field(description="this page's number, from 1 (as asked)", ge=1)
    page_size: int = Field(description="items per page (as asked, 1..500)", ge=1, le=500)
    total: int = Field(description="items in the whole list, over all pages", ge=0)


# -- /v1/recommendations ------------------------------------------------------------------------


class Recommendation(Body):
    """One stock of the day's recommendations."""

    date: str = Field(description=f"the day the recommendation was made on, {DAY}")
    for_date: str = Field(description=f"the trading day it is for, {DAY}")
    rank: int = Field(description="the model's rank of the stock, 1 = best")
    symbol: str = Field(description="the stock's code with its exchange, e.g. 600000.SH")
    name: str = Field(description="the stock's name")
    industry: str = Field(description="the stock's industry")
    close: float | None = Field(description=f"the day's close price in CNY; {NAN}")
    score: float | None = Field(description=f"the model's score (higher is better); {NAN}")
    probability: float | None = Field(
        description="the model's calibrated probability that the stock ends the day in the top "
        f"quintile of the target, 0..1; {NAN} (e.g. a model fitted without calibration)"
    )
    confidence: float | None = Field(
        description=f"the ensemble members' agreement on the stock's rank, 0..1; {NAN} (e.g. a "
        "single model)"
    )
    weight: float | None = Field(description=f"target weight as a share of equity, 0..1; {NAN}")
    shares: int = Field(description="target shares to hold (0 for a sale of the whole position)")
    action: str = Field(description="what to do: buy, hold, sell, wait or no trade")
    reason: str = Field(description="why (e.g. entered the top-N)")
    risk_note: str = Field(description="risk rules the stock breaks, '; '-separated ('' if none)")
    status: str = Field(description="the day's portfolio status (e.g. trade, no trade)")


class RecommendationsPage(PageEnvelope):
    """A page of the day's recommendations, best first."""

    date: str = Field(description=f"the day of the recommendations, {DAY}")
    for_date: str = Field(description=f"the trading day they are for, {DAY}")
    items: list[Recommendation] = Field(description="this page's recommendations")


# -- /v1/positions ------------------------------------------------------------------------------


class Position(Body):
    """One position of the paper book at the day's close."""

    symbol: str = Field(description="the stock's code with its exchange, e.g. 600000.SH")
    shares: float | None = Field(description=f"shares held; {NAN}")
    price: float | None = Field(description=f"the day's close price in CNY; {NAN}")
    value: float | None = Field(description=f"the position's value in CNY (shares x price); {NAN}")
    weight: float | None = Field(description=f"the position's value as a share of equity; {NAN}")


class PositionsPage(PageEnvelope):
    """A page of the paper book's positions, largest value first, with its cash and equity."""

    date: str = Field(description=f"the day of the book, {DAY}")
    cash: float | None = Field(description="the book's cash in CNY; null when not recorded")
    equity: float | None = Field(
        description="the book's equity (cash and positions) in CNY; null when not recorded"
    )
    items: list[Position] = Field(description="this page's positions")


# -- /v1/pnl ------------------------------------------------------------------------------------


class PnlDay(Body):
    """One day of the paper book."""

    date: str = Field(description=f"the day, {DAY}")
    equity: float | None = Field(description=f"equity at the close in CNY; {NAN}")
    peak: float | None = Field(description=f"the highest equity so far in CNY; {NAN}")
    cash: float | None = Field(description=f"cash at the close in CNY; {NAN}")
    fees: float | None = Field(
        description=f"the day's fees in CNY (commission, stamp duty, transfer fee); {NAN}"
    )
    positions: int = Field(description="positions held at the close", ge=0)
    pnl: float | None = Field(
        description="the day's P&L in CNY (equity less the day before's); null on the first "
        "day stored"
    )
    return_: float | None = Field(
        alias="return",
        description="the day's return as a share of the day before's equity; null on the "
        "first day stored",
    )
    drawdown: float | None = Field(
        description=f"equity / peak - 1 (0 at a peak, negative below it); {NAN}"
    )


class PnlPage(PageEnvelope):
    """A page of the paper book day by day, oldest first."""

    start: str | None = Field(description=f"the first day asked for, {DAY}; null: open")
    end: str | None = Field(description=f"the last day asked for, {DAY}; null: open")
    items: list[PnlDay] = Field(description="this page's days")


# -- /v1/factors --------------------------------------------------------------------------------


class Factor(Body):
    """One factor of the day's active set. The screening figures are present when the
    screening table exists, the AI fields when the AI factor table exists; a factor without
    a row there has them null."""

    factor: str = Field(description="the factor's name (AI factors: ai_<hash>)")
    factor_set: str = Field(description="the set it belongs to (e.g. alpha158, micro, ai)")
    rank_ic_mean: float | None = Field(
        description=f"mean daily rank IC with the next returns over the screening window; {NAN}"
    )
    t_stat: float | None = Field(description=f"the t-statistic of the mean rank IC; {NAN}")
    rank_ic_std: float | None = Field(
        default=None, description=f"the standard deviation of the daily rank IC; {NAN}"
    )
    icir: float | None = Field(
        default=None, description=f"the IC information ratio, mean / std of the rank IC; {NAN}"
    )
    p_value: float | None = Field(
        default=None, description=f"the p-value of the mean rank IC; {NAN}"
    )
    n_days: int | None = Field(
        default=None,
        description="days in the screening window; null without a screening row (the number "
        "is then written as a float, e.g. 60.0, for every factor of the answer)",
    )
    formula: str | None = Field(
        default=None, description="an AI factor's formula; null for other factors"
    )
    hypothesis: str | None = Field(
        default=None, description="the hypothesis behind an AI factor; null for other factors"
    )
    admitted_on: str | None = Field(
        default=None,
        description=f"the day an AI factor was last admitted up to this day, {DAY}; null for "
        "other factors",
    )
    origin: Literal["traditional", "ai"] = Field(
        description="ai for AI-mined factors (set ai or name ai_...), else traditional"
    )


class FactorsPage(PageEnvelope):
    """A page of the day's active factors, strongest |rank IC| first."""

    date: str = Field(description=f"the day of the active set, {DAY}")
    items: list[Factor] = Field(description="this page's factors")


# -- /v1/performance ----------------------------------------------------------------------------


class Performance(Body):
    """The performance report's key figures of a day, after costs."""

    date: str = Field(description=f"the day of the figures, {DAY}")
    figures: dict[str, float | None] = Field(
        description="each figure by the name performance_summary gives it (returns and "
        f"drawdowns as fractions, e.g. 0.034 = 3.4%); {NAN}"
    )
    report: str | None = Field(
        description="the path of the day's report page (/v1/performance/report?date=...); "
        "null when no page was written for the day"
    )


# -- /v1/models ---------------------------------------------------------------------------------


class ModelVersion(Body):
    """One registered model version from MLflow's registry."""

    model: str = Field(description="the registered model's name")
    version: int = Field(description="the version number, from 1")
    day: str | None = Field(description=f"the day it was trained for, {DAY}; null if untagged")
    aliases: list[str] = Field(description="its registry aliases (e.g. champion)")
    champion: bool = Field(description="whether it is the model's champion (serving)")
    challenger: bool = Field(description="whether it is the model's challenger")
    decision: str | None = Field(description="its promotion decision; null if none was made")
    reason: str | None = Field(description="the reason for the decision; null if none")
    created_at: str = Field(description="when the version was registered, ISO 8601 in UTC")
    metrics: dict[str, float] = Field(
        description="its run's metrics by name (finite values only; empty if the run is gone)"
    )


class ModelsPage(PageEnvelope):
    """A page of the registered model versions, models by name, newest version first."""

    champions: dict[str, int] = Field(description="the champion's version of each model")
    challengers: dict[str, int] = Field(description="the challenger's version of each model")
    items: list[ModelVersion] = Field(description="this page's versions")


# -- /v1/health ---------------------------------------------------------------------------------


class JobHealth(Body):
    """A job's last run among the instance's recent runs."""

    job: str = Field(description="the Dagster job's name")
    status: str = Field(description="its last run's Dagster status (e.g. SUCCESS, FAILURE)")
    start: str | None = Field(description="when it started, ISO 8601 in UTC; null: not yet")
    end: str | None = Field(description="when it ended, ISO 8601 in UTC; null: not yet")
    duration_s: float | None = Field(description="its duration in seconds; null until it ends")
    last_success: str | None = Field(
        description="the end of the job's last successful run, ISO 8601 in UTC; null if none"
    )


class CheckHealth(Body):
    """The latest evaluation of an asset check."""

    asset: str = Field(description="the asset's key")
    check: str = Field(description="the check's name")
    passed: bool = Field(description="whether it passed")
    severity: str = Field(description="its severity, WARN or ERROR")
    partition: str | None = Field(description=f"the partition checked, {DAY}; null: none")
    evaluated_at: str = Field(description="when it was evaluated, ISO 8601 in UTC")


class MarketInputs(Body):
    """What the market delivers (QUANT_MARKET_KINDS) and what its days go without."""

    delivered: list[str] = Field(
        description="the kinds of data the market delivers: bars, trades, order_book, news, "
        "corporate_actions"
    )
    skipped: dict[str, str] = Field(
        description="each kind it does not deliver -> the stages skipped without it"
    )


class Health(Body):
    """The Dagster instance's view of the pipeline's runs and checks."""

    taken_at: str = Field(description="when the instance was read, ISO 8601 in UTC")
    runs_by_status: dict[str, int] = Field(
        description="how many runs the instance holds by status (statuses with none left out)"
    )
    jobs: list[JobHealth] = Field(description="each job's last run, jobs by name")
    checks: list[CheckHealth] = Field(description="each check's latest evaluation")
    failing_checks: int = Field(description="how many of `checks` did not pass", ge=0)
    market_inputs: MarketInputs = Field(description="the inputs the market's days have")


# -- /v1/admin ----------------------------------------------------------------------------------


class AuditRow(Body):
    """One audited request."""

    ts: str = Field(description="when it was answered, ISO 8601 in UTC (milliseconds, ending in Z)")
    request_id: str = Field(description="the request's id (its X-Request-ID header)")
    key_id: str = Field(description="the key it authenticated with; '' if none")
    method: str = Field(description="the HTTP method")
    route: str = Field(description="the route's template (e.g. /v1/recommendations)")
    params: str = Field(description="its query and path parameters as JSON text, truncated")
    status: int = Field(description="the HTTP status answered")
    latency_ms: float | None = Field(description=f"time to answer in milliseconds; {NAN}")
    client: str = Field(description="the client's address")


class AuditPage(PageEnvelope):
    """A page of the audit log, newest first."""

    items: list[AuditRow] = Field(description="this page's rows")


class KeyRecord(Body):
    """An API key's record (never its secret or hash)."""

    key_id: str = Field(description="the key's id, k + 16 hex digits")
    name: str = Field(description="who or what uses the key")
    scope: Literal["read", "admin"] = Field(description="read, or admin (which implies read)")
    created_at: str = Field(description="when it was created, ISO 8601 in UTC")
    expires_at: str = Field(description="when it stops working, ISO 8601 in UTC")
    revoked: bool = Field(description="whether it was revoked")
    revoked_at: str | None = Field(
        description="when it was revoked, ISO 8601 in UTC; null if not revoked"
    )


class KeysPage(PageEnvelope):
    """A page of the API keys, newest first."""

    items: list[KeyRecord] = Field(description="this page's keys")


class CreatedKey(KeyRecord):
    """A new key's record and the key itself, shown in this answer only."""

    key: str = Field(description="the key, qk_<key_id>.<secret>: shown once, stored hashed")


class RevokedKey(Body):
    """The answer to a revocation."""

    key_id: str = Field(description="the revoked key's id")
    revoked: Literal[True] = Field(description="always true")


# -- /oauth/token -------------------------------------------------------------------------------


class AccessToken(Body):
    """An OAuth2 access token (RFC 6749, section 5.1)."""

    access_token: str = Field(description="the bearer token (a signed JWT)")
    token_type: Literal["bearer"] = Field(description="always bearer")
    expires_in: int = Field(description="its lifetime in seconds")
    scope: str = Field(description="the scopes it carries, space-separated (read, admin)")
