"""The offline generator: genetic programming over the formula language.

A population of formula trees evolves on the training segment only: fitness is the |mean
daily rank IC| on train, less a complexity penalty per node and a penalty for resembling a
factor already in use. Children come from subtree crossover of two tournament winners and
from mutation (a new subtree, a changed window, a swapped operator of the same shape, or a
hoisted subtree). The population carries over from round to round, so each round starts
from the best formulas so far. Trees are the parser's nodes: every child is a formula the
engine parses, and nothing is ever executed as code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_assets.ai_factors.formula_trees import Path, replace, simplify, size, subtrees, unparse
from quant_assets.ai_factors.generators import Hypothesis, MiningContext, Proposal
from quant_assets.factors import ops
from quant_assets.factors.parser import Call, FieldRef, Node, Number

log = logging.getLogger(__name__)

# Operator shapes the search draws from, by signature.
UNARY = ("Neg", "Abs", "Log", "Sign")
BINARY = ("Add", "Sub", "Mul", "Div")
ROLLING = ("Mean", "Std", "Sum", "Max", "Min", "Rank", "Ref", "Delta", "Slope", "WMA", "Skew")
PAIR = ("Corr", "Cov")
CROSS = ("CSRank",)
WINDOWS = (2, 3, 5, 10, 20, 40)
WINDOW_KINDS = ("window", "lag", "span")


@dataclass
class Member:
    tree: Node
    formula: str
    fitness: float
    ic: float
    max_corr: float


def _window(rng: np.random.Generator, op: str) -> Number:
    low = getattr(ops.REGISTRY[op], "min_window", 1)
    choices = [w for w in WINDOWS if w >= low]
    return Number(float(rng.choice(choices)), True, 0)


def random_tree(rng: np.random.Generator, fields: list[str], depth: int) -> Node:
    """A random series-valued tree at most `depth` calls deep (the grow method)."""
    if depth <= 0 or rng.random() < 0.2:
        return FieldRef(str(rng.choice(fields)), 0)
    shape = rng.choice(["unary", "binary", "rolling", "rolling", "rolling", "pair", "cross"])
    sub = depth - 1
    if shape == "unary":
        return Call(str(rng.choice(UNARY)), (random_tree(rng, fields, sub),), 0)
    if shape == "binary":
        a, b = random_tree(rng, fields, sub), random_tree(rng, fields, sub)
        return Call(str(rng.choice(BINARY)), (a, b), 0)
    if shape == "pair":
        op = str(rng.choice(PAIR))
        a, b = random_tree(rng, fields, sub), random_tree(rng, fields, sub)
        return Call(op, (a, b, _window(rng, op)), 0)
    if shape == "cross":
        return Call("CSRank", (random_tree(rng, fields, sub),), 0)
    op = str(rng.choice(ROLLING))
    return Call(op, (random_tree(rng, fields, sub), _window(rng, op)), 0)


def _slots(node: Node) -> tuple[list[Path], list[Path]]:
    """Paths of the expression positions (where any series may go) and of the window
    literals of `node`."""
    exprs: list[Path] = [()]
    windows: list[Path] = []
    for path, sub in subtrees(node):
        if not isinstance(sub, Call):
            continue
        cls = ops.REGISTRY.get(sub.name)
        signature = cls.signature if cls is not None else ()
        for i, kind in enumerate(signature[: len(sub.args)]):
            if kind in ("expr", "series"):
                exprs.append((*path, i))
            elif kind in WINDOW_KINDS:
                windows.append((*path, i))
    return exprs, windows


def _at(node: Node, path: Path) -> Node:
    for i in path:
        assert isinstance(node, Call)
        node = node.args[i]
    return node


def _parent_op(node: Node, path: Path) -> str:
    parent = _at(node, path[:-1])
    assert isinstance(parent, Call)
    return parent.name


def mutate(rng: np.random.Generator, tree: Node, fields: list[str]) -> Node:
    exprs, windows = _slots(tree)
    kind = rng.choice(["subtree", "window", "swap", "hoist"], p=[0.4, 0.3, 0.2, 0.1])
    if kind == "window" and windows:
        path = windows[rng.integers(len(windows))]
        return replace(tree, path, _window(rng, _parent_op(tree, path)))
    if kind == "swap":
        calls = [p for p in exprs if isinstance(_at(tree, p), Call)]
        if calls:
            path = calls[rng.integers(len(calls))]
            node = _at(tree, path)
            assert isinstance(node, Call)
            for family in (UNARY, BINARY, ROLLING, PAIR):
                if node.name in family and len(family) > 1:
                    others = [o for o in family if o != node.name]
                    args = node.args
                    name = str(rng.choice(others))
                    if len(args) == 2 and isinstance(args[1], Number):
                        args = (args[0], _window(rng, name))
                    return replace(tree, path, Call(name, args, 0))
    if kind == "hoist" and len(exprs) > 1:
        path = exprs[1 + rng.integers(len(exprs) - 1)]
        return _at(tree, path)
    path = exprs[rng.integers(len(exprs))]
    return replace(tree, path, random_tree(rng, fields, 2))


def crossover(rng: np.random.Generator, a: Node, b: Node) -> Node:
    """`a` with one of its expression subtrees replaced by one of `b`'s."""
    slots_a, _ = _slots(a)
    slots_b, _ = _slots(b)
    donor = _at(b, slots_b[rng.integers(len(slots_b))])
    return replace(a, slots_a[rng.integers(len(slots_a))], donor)


class GeneticGenerator:
    """Genetic programming on the training segment (see the module's docstring)."""

    name = "offline"

    def __init__(
        self,
        seed: int = 0,
        population: int = 60,
        generations: int = 4,
        complexity: float = 0.0005,
        similarity: float = 0.1,
        tournament: int = 3,
        crossover_share: float = 0.5,
        max_depth: int = 4,
    ) -> None:
        self.seed = seed
        self.population = population
        self.generations = generations
        self.complexity = complexity
        self.similarity = similarity
        self.tournament = tournament
        self.crossover_share = crossover_share
        self.max_depth = max_depth
        self.rng = np.random.default_rng(seed)
        self.members: list[Member] = []
        self.proposed: set[str] = set()

    def _fitness(self, scores: pd.DataFrame, trees: dict[str, Node], ctx: MiningContext):
        ic = scores["ic"].abs()
        excess = (scores["max_corr"].fillna(0.0) - ctx.max_corr).clip(lower=0.0)
        sizes = pd.Series({f: size(t) for f, t in trees.items()}).reindex(scores.index)
        fit = ic - self.complexity * sizes - self.similarity * excess
        # a formula with values on a few days only (a constant, a long warm-up) scores on luck
        return fit.where(np.isfinite(fit) & (scores["n_days"] >= ctx.min_days), -np.inf)

    def _evaluate(self, trees: list[Node], ctx: MiningContext) -> list[Member]:
        by_formula: dict[str, Node] = {}
        for tree in map(simplify, trees):
            if size(tree) <= ctx.max_nodes:
                by_formula.setdefault(unparse(tree), tree)
        known = {m.formula for m in self.members}
        new = {f: t for f, t in by_formula.items() if f not in known}
        if not new:
            return []
        scores = ctx.score_train(list(new))
        fitness = self._fitness(scores, new, ctx)
        return [
            Member(
                tree,
                f,
                float(fitness.get(f, -np.inf)),
                float(scores["ic"].get(f, np.nan)),
                float(scores["max_corr"].get(f, np.nan)),
            )
            for f, tree in new.items()
        ]

    def _pick(self) -> Member:
        idx = self.rng.integers(len(self.members), size=min(self.tournament, len(self.members)))
        return max((self.members[i] for i in idx), key=lambda m: m.fitness)

    def _survive(self, pool: list[Member]) -> None:
        pool = [m for m in pool if np.isfinite(m.fitness)]
        pool.sort(key=lambda m: m.fitness, reverse=True)
        self.members = pool[: self.population]

    def _diverse(self, ctx: MiningContext) -> list[Member]:
        """The fittest new members, skipping one too close to a factor in use or to a member
        already chosen (it would only spend a validation test)."""
        fresh = [
            m
            for m in self.members
            if m.formula not in self.proposed and not m.max_corr >= ctx.max_corr
        ][: 4 * ctx.per_round]
        if not fresh:
            return []
        corr = ctx.correlate([m.formula for m in fresh])
        chosen: list[Member] = []
        for m in fresh:
            if m.formula not in corr.index:
                continue
            if any(corr.at[m.formula, c.formula] >= ctx.max_corr for c in chosen):
                continue
            chosen.append(m)
            self.proposed.add(m.formula)
            if len(chosen) == ctx.per_round:
                break
        return chosen

    def propose(self, ctx: MiningContext) -> Proposal:
        t0 = time.perf_counter()
        if not self.members:
            trees = [
                random_tree(self.rng, ctx.fields, 1 + i % self.max_depth)
                for i in range(self.population * 2)
            ]
            self._survive(self._evaluate(trees, ctx))
        for generation in range(self.generations):
            if not self.members:
                break
            children = []
            for _ in range(self.population):
                if self.rng.random() < self.crossover_share:
                    child = crossover(self.rng, self._pick().tree, self._pick().tree)
                else:
                    child = mutate(self.rng, self._pick().tree, ctx.fields)
                children.append(child)
            self._survive(self.members + self._evaluate(children, ctx))
            best = self.members[0] if self.members else None
            log.info(
                "round %d generation %d/%d: best fitness %.4f (%s)",
                ctx.round,
                generation + 1,
                self.generations,
                best.fitness if best else float("nan"),
                best.formula if best else "-",
            )
        chosen = self._diverse(ctx)
        hypotheses = [
            Hypothesis(f"genetic search, train |IC| {abs(m.ic):.4f}", [m.formula]) for m in chosen
        ]
        note = "" if chosen else "the search found no new formula"
        log.info(
            "round %d: %d proposals in %.1f s", ctx.round, len(chosen), time.perf_counter() - t0
        )
        return Proposal(hypotheses, note=note)
