"""What a generator of factor ideas sees and returns: the round's context, hypotheses with
their formulas, and what the round cost (tokens, money, calls, errors).

Two generators implement `propose`: the LLM (`llm_generator.LLMGenerator`, through litellm)
and the offline genetic search (`genetic.GeneticGenerator`). Both see the same context:
the factors in use with their train figures, what was admitted, what was rejected and why,
and a way to score formulas on the training segment. Neither ever sees a validation or
test number: validation decides admission, and telling a generator its results would let
the loop fit the validation segment round after round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd


@dataclass
class Hypothesis:
    """An idea in words and the formulas that express it."""

    text: str
    formulas: list[str]


@dataclass
class Usage:
    """What a round of generation cost."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.errors.extend(other.errors)


@dataclass
class Proposal:
    hypotheses: list[Hypothesis]
    usage: Usage = field(default_factory=Usage)
    note: str = ""  # why a round produced nothing, when it did not


@dataclass
class MiningContext:
    """What a generator may know in a round. `score_train(formulas)` returns, per formula,
    its train-segment `ic`, `icir`, `n_days` and `max_corr` (the largest |correlation| with
    a factor in use), or NaN for a formula that does not compile; `correlate(formulas)`
    their pairwise |rank correlation| on train (formulas x formulas)."""

    round: int
    fields: list[str]
    operators: list[str]
    in_use: pd.DataFrame  # name, formula, origin, train ic, icir
    rejected: pd.DataFrame  # formula, reason, train ic (the latest first)
    market: dict[str, float]
    per_round: int
    max_corr: float
    max_nodes: int
    min_days: int
    score_train: Callable[[list[str]], pd.DataFrame]
    correlate: Callable[[list[str]], pd.DataFrame]
    notes: list[str] = field(default_factory=list)  # untrusted text (e.g. news titles)


class Generator(Protocol):
    name: str

    def propose(self, context: MiningContext) -> Proposal: ...


class GeneratorUnavailable(RuntimeError):
    """The generator cannot run at all (no model configured, the provider unreachable): the
    loop goes on with the offline search and records why."""
