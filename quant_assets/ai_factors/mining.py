"""The factor-mining loop (`mine`): a generator proposes formulas, the platform checks them,
scores them on train and validation, admits the few that pass, and feeds back what happened.

Time discipline: everything before the final report reads the bars up to the end of the
validation segment only (`Scorer`), so a test-segment price cannot change a candidate, a
score or a decision. The admitted set's test figures are computed once, after the last
round, and reported apart (`MiningResult.test`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.ai_factors.admission import (
    ADMITTED,
    DUPLICATE,
    INVALID,
    REJECTED,
    AdmissionRules,
    decide,
)
from quant_assets.ai_factors.formula_trees import size, to_tree
from quant_assets.ai_factors.generators import (
    Generator,
    GeneratorUnavailable,
    MiningContext,
    Proposal,
    Usage,
)
from quant_assets.ai_factors.genetic import GeneticGenerator
from quant_assets.ai_factors.scoring import Scorer, test_stats
from quant_assets.factors import ops
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.factors.engine import Limits, compile_expression
from quant_assets.factors.parser import FormulaError
from quant_assets.models.segments import Segments

log = logging.getLogger(__name__)

CANDIDATE_COLUMNS = [
    "round", "generator", "hypothesis", "name", "formula", "nodes", "status", "reason",
    "train_ic", "train_icir", "train_t", "valid_ic", "valid_icir", "valid_t", "valid_p",
    "valid_days", "turnover", "closest", "closest_corr", "tests",
]  # fmt: skip
FIELD_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
ROUND_COLUMNS = [
    "round", "generator", "hypotheses", "candidates", "invalid", "duplicates", "valid_tests",
    "admitted", "calls", "prompt_tokens", "completion_tokens", "cost_usd", "errors", "seconds",
    "note",
]  # fmt: skip


@dataclass
class MiningResult:
    """The admitted formulas with their train and validation figures, the log of every
    candidate and decision, a row per round (tokens, cost, time), the admitted set's
    test-segment figures (computed after selection), and which generator ran."""

    admitted: pd.DataFrame
    candidates: pd.DataFrame
    rounds: pd.DataFrame
    test: pd.DataFrame
    generator: str
    fallback: str = ""  # why the offline search replaced the asked-for generator, if it did
    segments: Segments | None = None
    rules: AdmissionRules = field(default_factory=AdmissionRules)

    @property
    def formulas(self) -> dict[str, str]:
        """Admitted name -> formula."""
        return dict(zip(self.admitted["name"], self.admitted["formula"], strict=True))


def factor_name(key: str) -> str:
    """A stable name for a formula from its canonical key: the loop's own, never the
    generator's (a name proposed in text could otherwise aim at a file or a table)."""
    return "ai_" + hashlib.sha1(key.encode()).hexdigest()[:10]


class _Round:
    """The checks and the scoring of one round's formulas, and the run's shared state."""

    def __init__(self, scorer: Scorer, rules: AdmissionRules, limits: Limits) -> None:
        self.scorer = scorer
        self.rules = rules
        self.limits = limits
        self.seen: dict[str, str] = {}  # canonical key -> name of its first candidate
        self.tests = 0
        self.train_cache: dict[str, dict[str, float]] = {}
        self.corr_cache: dict[str, dict[str, float]] = {}

    def check(self, formula: str) -> tuple[str | None, str]:
        """(canonical key, "") or (None, why the formula cannot be evaluated)."""
        if not isinstance(formula, str) or not formula.strip():
            return None, "empty formula"
        try:
            op = compile_expression(formula, self.scorer.fields, limits=self.limits)
            nodes = size(to_tree(formula))
        except FormulaError as exc:
            return None, f"does not parse or check: {exc.message}"
        if nodes > self.rules.max_nodes:
            return None, f"tree of {nodes} nodes exceeds {self.rules.max_nodes}"
        if op.lookback() > self.rules.max_lookback:
            return None, f"looks back {op.lookback()} days, more than {self.rules.max_lookback}"
        return op.key, ""

    def score_train(self, formulas: list[str]) -> pd.DataFrame:
        """Train-segment figures for generators (see `MiningContext`): IC figures cached by
        formula, correlations topped up with the references admitted since."""
        unique = list(dict.fromkeys(formulas))
        todo = [f for f in unique if f not in self.train_cache]
        good = [f for f in todo if self.check(f)[0] is not None]
        for f in set(todo) - set(good):
            self.train_cache[f] = {"ic": np.nan, "icir": np.nan, "n_days": 0}
        references = list(self.scorer.reference.columns)

        def missing(f: str) -> list[str]:
            return [r for r in references if r not in self.corr_cache.get(f, {})]

        older = [f for f in unique if f not in todo and np.isfinite(self.train_cache[f]["ic"])]
        need = good + [f for f in older if missing(f)]
        if need:  # one evaluation for the new formulas' IC and everyone's new correlations
            values = self.scorer.values(need)
            if good:
                stats = self.scorer.segment_stats(values[good], "train")
                for f in good:
                    self.train_cache[f] = stats.loc[f, ["ic", "icir", "n_days"]].to_dict()
            stale = {f: missing(f) for f in need if np.isfinite(self.train_cache[f]["ic"])}
            stale = {f: m for f, m in stale.items() if m}
            if stale:
                among = sorted({r for m in stale.values() for r in m})
                corr = self.scorer.correlations(values[list(stale)], among).abs()
                for f in stale:
                    self.corr_cache.setdefault(f, {}).update(corr.loc[f].to_dict())
        rows = {}
        for f in formulas:
            corr = [c for c in self.corr_cache.get(f, {}).values() if np.isfinite(c)]
            scored = np.isfinite(self.train_cache[f]["ic"])
            top = max(corr, default=0.0) if scored else np.nan
            rows[f] = {**self.train_cache[f], "max_corr": top}
        return pd.DataFrame.from_dict(rows, orient="index").reindex(formulas)

    def correlate(self, formulas: list[str]) -> pd.DataFrame:
        """Pairwise |rank correlation| on train of formulas that check (for generators)."""
        good = [f for f in dict.fromkeys(formulas) if self.check(f)[0] is not None]
        return self.scorer.pairwise(self.scorer.values(good)).abs()


def _candidate_rows(
    proposal: Proposal, run: _Round, round_no: int, generator: str
) -> tuple[list[dict], dict[str, str]]:
    """One log row per proposed formula, invalid and duplicate ones decided already; and
    formula -> name of those still to score."""
    rows, pending = [], {}
    for hypothesis in proposal.hypotheses:
        for formula in hypothesis.formulas:
            row = {c: np.nan for c in CANDIDATE_COLUMNS}
            row.update(round=round_no, generator=generator, hypothesis=hypothesis.text)
            row.update(formula=str(formula)[:2000], name="", status="", reason="")
            key, error = run.check(formula)
            if key is None:
                row.update(status=INVALID, reason=error)
            elif key in run.seen:
                row.update(status=DUPLICATE, reason=f"the same formula as {run.seen[key]}")
            else:
                name = factor_name(key)
                run.seen[key] = name
                row.update(name=name, nodes=size(to_tree(formula)))
                pending[formula] = name
            rows.append(row)
    return rows, pending


def _score_and_decide(rows: list[dict], pending: dict[str, str], run: _Round) -> pd.DataFrame:
    """Train and validation figures of the pending formulas, then the decisions, strongest
    train IC first, each admitted one joining the factors the next is compared with."""
    scorer = run.scorer
    values = scorer.values(list(pending))
    train = scorer.segment_stats(values, "train")
    valid = scorer.segment_stats(values, "valid")
    turnover = scorer.turnover(values)
    by_formula = {r["formula"]: r for r in rows if r["formula"] in pending and not r["status"]}
    order = train["ic"].abs().sort_values(ascending=False, na_position="last").index
    for formula in order:
        row = by_formula[formula]
        t, v = train.loc[formula], valid.loc[formula]
        row.update(
            train_ic=t["ic"], train_icir=t["icir"], train_t=t["t_stat"], valid_ic=v["ic"],
            valid_icir=v["icir"], valid_t=v["t_stat"], valid_p=v["p_value"],
            valid_days=int(v["n_days"]), turnover=turnover.get(formula, np.nan),
        )  # fmt: skip
        if not np.isfinite(t["ic"]) or t["n_days"] < run.rules.min_days:
            row.update(status=INVALID, reason="no usable values on the training segment")
            continue
        corr = scorer.correlations(values[[formula]]).abs()
        closest = None
        if corr.shape[1] and corr.notna().any(axis=None):
            best = corr.loc[formula].idxmax()
            closest = (str(best), float(corr.at[formula, best]))
            row.update(closest=closest[0], closest_corr=closest[1])
        counts = closest is None or closest[1] < run.rules.max_corr
        run.tests += int(counts)
        status, reason = decide(
            t["ic"], v["ic"], v["p_value"], int(v["n_days"]), closest, run.tests, run.rules
        )
        row.update(status=status, reason=reason, tests=run.tests)
        if status == ADMITTED:
            scorer.add_reference(pending[formula], values[formula])
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


def _context(
    round_no: int, run: _Round, in_use: pd.DataFrame, log_frame: pd.DataFrame, per_round: int,
    market: dict[str, float],
) -> MiningContext:  # fmt: skip
    rejected = log_frame[log_frame["status"].isin([REJECTED, INVALID, DUPLICATE])]
    rejected = rejected.iloc[::-1][["formula", "status", "reason", "train_ic"]].head(30)
    operators = sorted(n for n in ops.REGISTRY if n not in ops.ALIASES)
    return MiningContext(
        round=round_no,
        fields=list(run.scorer.fields),
        operators=operators,
        in_use=in_use,
        rejected=rejected.reset_index(drop=True),
        market=market,
        per_round=per_round,
        max_corr=run.rules.max_corr,
        max_nodes=run.rules.max_nodes,
        min_days=run.rules.min_days,
        score_train=run.score_train,
        correlate=run.correlate,
    )


def _market_summary(bars: pd.DataFrame, days: pd.DatetimeIndex) -> dict[str, float]:
    """A few statistics of the training period, in words a generator can use."""
    close = bars.pivot(index="date", columns="symbol", values="close").reindex(days)
    ret = close.pct_change(fill_method=None).iloc[1:]
    market = ret.mean(axis=1)
    return {
        "stocks": float(close.shape[1]),
        "train_days": float(len(days)),
        "market_mean_daily_return": float(market.mean()),
        "market_daily_volatility": float(market.std()),
        "mean_cross_sectional_dispersion": float(ret.std(axis=1).mean()),
        "share_of_up_days": float((market > 0).mean()),
    }


def make_generator(generator: str | Generator, seed: int, llm=None) -> Generator:
    """The generator asked for: "offline" (the genetic search), "llm" (needs `llm`, an
    `LLMSettings` with a model), or a ready generator object."""
    if not isinstance(generator, str):
        return generator
    if generator == "offline":
        return GeneticGenerator(seed=seed)
    if generator == "llm":
        from quant_assets.ai_factors.llm_generator import LLMGenerator

        if llm is None or not getattr(llm, "model", None):
            raise GeneratorUnavailable("no LLM model is configured")
        return LLMGenerator(llm)
    raise ValueError(f"generator must be 'offline', 'llm' or a generator, got {generator!r}")


def mine(
    bars: pd.DataFrame,
    segments: Segments | dict,
    rounds: int = 3,
    generator: str | Generator = "offline",
    seed: int = 0,
    *,
    in_use: dict[str, str] | None = None,
    rules: AdmissionRules | None = None,
    per_round: int = 8,
    llm=None,
    notes: list[str] | None = None,
    on_round: Callable[[dict, pd.DataFrame], None] | None = None,
) -> MiningResult:
    """Run `rounds` rounds of generation, checking, scoring and admission on `bars` (a long
    adjusted table with `date`, `symbol` and numeric fields such as close, volume or news
    factors) and return a `MiningResult`.

    `in_use`: name -> formula of the factors already in use (default: the daily set), which
    a candidate must not repeat or resemble. `generator`: "offline", "llm" (with `llm`, an
    `LLMSettings`) or an object with `propose`; when the LLM cannot run at all, the offline
    search takes over and `fallback` says why. `notes`: text for the LLM's prompt (news
    titles, a market comment), shown to it as data, never as instructions.
    `on_round(round_row, candidates)` is called after each round (the asset logs it)."""
    seg = segments if isinstance(segments, Segments) else Segments.from_dict(segments)
    rules = rules or AdmissionRules()
    limits = Limits(max_nodes=4 * rules.max_nodes, max_depth=32, max_window=250)
    bars = bars.assign(date=pd.to_datetime(bars["date"]))
    known = bars[bars["date"] <= seg.valid[1]]
    fields = set(known.columns)
    in_use = {
        name: formula
        for name, formula in (DAILY_FACTORS if in_use is None else in_use).items()
        if all(c in fields for c in FIELD_RE.findall(formula))
    }
    scorer = Scorer(known, seg, in_use)
    run = _Round(scorer, rules, limits)
    for key_formula in in_use.values():
        key, _ = run.check(key_formula)
        if key is not None:
            run.seen.setdefault(key, "a factor in use")
    in_use_stats = scorer.segment_stats(scorer.values(list(in_use.values())), "train")
    in_use_frame = pd.DataFrame(
        {
            "name": list(in_use),
            "formula": list(in_use.values()),
            "train_ic": in_use_stats["ic"].reindex(list(in_use.values())).to_numpy(),
            "train_icir": in_use_stats["icir"].reindex(list(in_use.values())).to_numpy(),
        }
    )
    market = _market_summary(known, scorer.days.train)
    fallback = ""
    try:
        gen = make_generator(generator, seed, llm)
    except GeneratorUnavailable as exc:
        fallback = f"offline search instead of the LLM: {exc}"
        log.warning(fallback)
        gen = GeneticGenerator(seed=seed)
    used = {gen.name}
    log_frame = pd.DataFrame(columns=CANDIDATE_COLUMNS)
    round_rows = []
    for round_no in range(1, rounds + 1):
        t0 = time.perf_counter()
        ctx = _context(round_no, run, in_use_frame, log_frame, per_round, market)
        ctx.notes = list(notes or [])
        try:
            proposal = gen.propose(ctx)
        except GeneratorUnavailable as exc:
            fallback = f"offline search from round {round_no}: {exc}"
            log.warning(fallback)
            gen = GeneticGenerator(seed=seed)
            used.add(gen.name)
            proposal = gen.propose(ctx)
        rows, pending = _candidate_rows(proposal, run, round_no, gen.name)
        tests_before = run.tests
        frame = _score_and_decide(rows, pending, run) if rows else pd.DataFrame(
            columns=CANDIDATE_COLUMNS)  # fmt: skip
        usage: Usage = proposal.usage
        round_row = {
            "round": round_no,
            "generator": gen.name,
            "hypotheses": len(proposal.hypotheses),
            "candidates": len(frame),
            "invalid": int((frame["status"] == INVALID).sum()),
            "duplicates": int((frame["status"] == DUPLICATE).sum()),
            "valid_tests": run.tests - tests_before,
            "admitted": int((frame["status"] == ADMITTED).sum()),
            "calls": usage.calls,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": usage.cost_usd,
            "errors": "; ".join(usage.errors),
            "seconds": time.perf_counter() - t0,
            "note": proposal.note,
        }
        round_rows.append(round_row)
        log_frame = pd.concat([log_frame, frame], ignore_index=True) if len(log_frame) else frame
        log.info(
            "round %d (%s): %d candidates, %d admitted, %.1f s",
            round_no, gen.name, len(frame), round_row["admitted"], round_row["seconds"],
        )  # fmt: skip
        if on_round is not None:
            on_round(round_row, frame)
    admitted = log_frame[log_frame["status"] == ADMITTED].reset_index(drop=True)
    formulas = dict(zip(admitted["name"], admitted["formula"], strict=True))
    test = test_stats(bars, seg, formulas)
    return MiningResult(
        admitted=admitted,
        candidates=log_frame.reset_index(drop=True),
        rounds=pd.DataFrame(round_rows, columns=ROUND_COLUMNS),
        test=test,
        generator="+".join(sorted(used)),
        fallback=fallback,
        segments=seg,
        rules=rules,
    )
