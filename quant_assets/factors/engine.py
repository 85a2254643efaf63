"""Compile formulas into operator trees and evaluate them over a long bars table.

The long table is pivoted once into (symbols, dates) panels per field; every operator then
runs on whole panels, and results are scattered back to the input's (date, symbol) rows.
Identical subtrees share one canonical key, so each is computed once per evaluation, and
intermediate panels are freed as soon as their last consumer has run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_assets.memory import normal_pages

from . import kernels as K
from . import kernels_online as KO
from . import ops
from .parser import Call, FieldRef, FormulaError, Node, Number, parse

KEY_COLUMNS = ("date", "symbol")


@dataclass(frozen=True)
class Limits:
    """Guards against runaway formulas (e.g. machine-generated ones)."""

    max_length: int = 10_000
    max_depth: int = 64
    max_nodes: int = 1_000
    max_window: int = 5_000


# ---------------------------------------------------------------- compile


def compile_expression(
    expr: str,
    fields: Iterable[str],
    *,
    allow_future: bool = False,
    limits: Limits = Limits(),
) -> ops.Op:
    """Parse and type-check ``expr`` into an operator tree; raises FormulaError."""
    if not isinstance(expr, str):
        raise FormulaError(f"formula must be a string, got {type(expr).__name__}")
    if len(expr) > limits.max_length:
        raise FormulaError(f"formula is {len(expr)} characters long, limit {limits.max_length}")
    tree = parse(expr, max_depth=limits.max_depth)
    builder = _Builder(expr, set(fields), allow_future, limits)
    op = builder.build(tree)
    if isinstance(op, ops.Const):
        raise FormulaError("formula must reference at least one field, e.g. $close", expr, 0)
    return op


class _Builder:
    def __init__(self, expr: str, fields: set[str], allow_future: bool, limits: Limits):
        self.expr = expr
        self.fields = fields
        self.allow_future = allow_future
        self.limits = limits
        self.nodes = 0

    def error(self, message: str, pos: int) -> FormulaError:
        return FormulaError(message, self.expr, pos)

    def build(self, node: Node) -> ops.Op:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self.error(f"formula has more than {self.limits.max_nodes} nodes", node.pos)
        if isinstance(node, Number):
            return ops.Const(node.value)
        if isinstance(node, FieldRef):
            if node.name not in self.fields:
                known = ", ".join("$" + f for f in sorted(self.fields))
                raise self.error(f"unknown field ${node.name} (available: {known})", node.pos)
            return ops.Field(node.name)
        return self.build_call(node)

    def build_call(self, node: Call) -> ops.Op:
        cls = ops.REGISTRY.get(node.name)
        if cls is None:
            close = [n for n in ops.REGISTRY if n.lower() == node.name.lower()]
            hint = f"; did you mean {close[0]}?" if close else ""
            raise self.error(f"unknown operator {node.name!r}{hint}", node.pos)
        sig = cls.signature
        n_req = len(sig) - len(cls.optional)
        args = node.args
        if not n_req <= len(args) <= len(sig):
            want = str(len(sig)) if n_req == len(sig) else f"{n_req} to {len(sig)}"
            raise self.error(
                f"{cls.name} takes {want} arguments ({', '.join(sig)}), got {len(args)}", node.pos
            )
        children: list[ops.Op] = []
        params: list = []
        for i, kind in enumerate(sig):
            if i >= len(args):
                params.append(cls.optional[i - n_req])
                continue
            arg = args[i]
            where = f"argument {i + 1} of {cls.name}"
            if kind in ("expr", "series"):
                child = self.build(arg)
                if kind == "series" and isinstance(child, ops.Const):
                    raise self.error(
                        f"{where} must be an expression of fields, not a number", arg.pos
                    )
                children.append(child)
            elif kind == "field":
                if not isinstance(arg, FieldRef):
                    raise self.error(f"{where} must be a field such as $industry", arg.pos)
                children.append(self.build(arg))
            else:
                params.append(self.literal(cls, kind, arg, where))
        op = cls(tuple(children), tuple(params))
        if isinstance(op, ops.ElemOp) and all(isinstance(c, ops.Const) for c in children):
            with np.errstate(all="ignore"):
                return ops.Const(float(op.fn(*(c.value for c in children))))
        if not self.allow_future and op.lookahead() > 0:
            raise self.error(
                f"{cls.name} looks into the future (negative lag or window); "
                "pass allow_future=True only for label definitions",
                node.pos,
            )
        return op

    def literal(self, cls, kind: str, arg: Node, where: str):
        value = self.constant(arg)
        if value is None:
            raise self.error(f"{where} must be a number literal", arg.pos)
        number, is_int = value
        if kind == "number":
            if kind == "number" and cls is ops.Quantile and not 0 <= number <= 1:
                raise self.error(f"{where} (quantile) must lie in [0, 1], got {number}", arg.pos)
            if cls is ops.CSWinsorize and not 0 <= number < 0.5:
                raise self.error(f"{where} must lie in [0, 0.5), got {number}", arg.pos)
            return number
        if kind == "span" and 0 < number < 1:
            return number
        if not is_int:
            raise self.error(f"{where} must be an integer window, got {number}", arg.pos)
        n = int(number)
        if abs(n) > self.limits.max_window:
            raise self.error(
                f"{where}: window {n} exceeds the limit {self.limits.max_window}", arg.pos
            )
        if n < 0 and kind == "span":
            raise self.error(f"{where} must be a positive span or 0 < alpha < 1", arg.pos)
        if n < 0 and not self.allow_future:
            raise self.error(
                f"{where} is negative ({n}): that references the future; "
                "pass allow_future=True only for label definitions",
                arg.pos,
            )
        if kind in ("window", "span") and n == 0:
            raise self.error(f"{where} must be a non-zero window", arg.pos)
        min_window = getattr(cls, "min_window", 1)
        if kind == "window" and abs(n) < min_window:
            raise self.error(
                f"{where}: {cls.name} needs a window of at least {min_window}", arg.pos
            )
        return n

    def constant(self, node: Node) -> tuple[float, bool] | None:
        """Fold a literal number, allowing a leading minus (``-1``)."""
        if isinstance(node, Number):
            return node.value, node.is_int
        if isinstance(node, Call) and node.name == "Neg" and len(node.args) == 1:
            inner = self.constant(node.args[0])
            if inner is not None:
                return -inner[0], inner[1]
        return None


# ---------------------------------------------------------------- data


class Panel:
    """The bars table pivoted lazily into (symbols, dates) float64 panels, one per field."""

    def __init__(self, bars: pd.DataFrame, field_dtype=np.float64):
        missing = [c for c in KEY_COLUMNS if c not in bars.columns]
        if missing:
            raise ValueError(f"bars lacks the key columns {missing}")
        self.bars = bars
        self.date_codes, self.dates = pd.factorize(bars["date"], sort=True)
        self.sym_codes, self.symbols = pd.factorize(bars["symbol"], sort=True)
        if (self.date_codes < 0).any() or (self.sym_codes < 0).any():
            raise ValueError("bars has missing dates or symbols")
        self.shape = (len(self.symbols), len(self.dates))
        flat = self.sym_codes.astype(np.int64) * self.shape[1] + self.date_codes
        if np.bincount(flat, minlength=self.shape[0] * self.shape[1]).max(initial=0) > 1:
            raise ValueError("bars has duplicate (date, symbol) rows")
        # each symbol's listed span: its first and last date with a row
        self.first = np.full(self.shape[0], self.shape[1], dtype=np.int64)
        self.last = np.full(self.shape[0], -1, dtype=np.int64)
        np.minimum.at(self.first, self.sym_codes, self.date_codes)
        np.maximum.at(self.last, self.sym_codes, self.date_codes)
        days = np.arange(self.shape[1])
        self.outside = (days < self.first[:, None]) | (days > self.last[:, None])
        self.first_reversed = self.shape[1] - 1 - self.last
        self.fields = [c for c in bars.columns if c not in KEY_COLUMNS]
        self.field_dtype = field_dtype
        self._cache: dict[str, np.ndarray] = {}

    def field(self, name: str) -> np.ndarray:
        if name not in self._cache:
            col = self.bars[name]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                # Categorical fields (industry, board ...) become integer codes, NaN if missing.
                codes, _ = pd.factorize(col, sort=True)
                values = np.where(codes < 0, np.nan, codes.astype(np.float64))
            panel = np.full(self.shape, np.nan, dtype=self.field_dtype)
            panel[self.sym_codes, self.date_codes] = values
            self._cache[name] = panel
        return self._cache[name]

    def group_codes(self, name: str) -> tuple[np.ndarray, int]:
        values = self.field(name)
        codes = np.where(np.isnan(values), -1, values).astype(np.int64)
        return codes, int(codes.max()) + 1 if codes.size else 0

    def slice(self, lo: int, hi: int) -> PanelSlice:
        return PanelSlice(self, lo, hi)


class PanelSlice:
    """Symbols ``lo:hi`` of a Panel (row views, no copies): one thread's share of the work.

    Only time-series operators can run on a slice; cross-sectional ones need every symbol."""

    def __init__(self, panel: Panel, lo: int, hi: int):
        self.panel = panel
        self.rows = slice(lo, hi)
        self.first = panel.first[lo:hi]
        self.first_reversed = panel.first_reversed[lo:hi]
        self.outside = panel.outside[lo:hi]

    def field(self, name: str) -> np.ndarray:
        return self.panel.field(name)[self.rows]

    def group_codes(self, name: str):
        raise RuntimeError("cross-sectional operators cannot run on a slice of symbols")


def _sorted_rows(panel: Panel, first_date: int = 0) -> np.ndarray:
    rows = np.lexsort((panel.sym_codes, panel.date_codes))
    if first_date > 0:
        rows = rows[panel.date_codes[rows] >= first_date]
    return rows


def _output_index(panel: Panel, rows: np.ndarray) -> pd.MultiIndex:
    return pd.MultiIndex(
        levels=[panel.dates, panel.symbols],
        codes=[panel.date_codes[rows], panel.sym_codes[rows]],
        names=list(KEY_COLUMNS),
        verify_integrity=False,
    )


# ---------------------------------------------------------------- evaluation


class Evaluator:
    """Evaluates operator trees on one Panel, sharing identical subtrees."""

    def __init__(self, panel: Panel | PanelSlice):
        self.panel = panel
        self.first = panel.first
        self.first_reversed = panel.first_reversed

    def field(self, name: str) -> np.ndarray:
        return self.panel.field(name)

    def group_codes(self, name: str):
        return self.panel.group_codes(name)

    def run(self, roots: list[ops.Op], sink: Callable[[int, np.ndarray | float], None]) -> None:
        """Evaluate ``roots`` in order, passing each result to ``sink(i, value)``.

        Each distinct subtree is computed once; a panel is dropped when its last consumer
        (a parent or a root still to be emitted) is done, which bounds peak memory."""
        uses: dict[str, int] = {}
        seen: set[str] = set()
        # fusion key -> distinct operators a shared kernel computes in one pass
        groups: dict[str, list[ops.Op]] = {}

        def count(op: ops.Op) -> None:
            uses[op.key] = uses.get(op.key, 0) + 1
            if op.key in seen:
                return
            seen.add(op.key)
            fkey = op.fusion_key()
            if fkey is not None:
                groups.setdefault(fkey, []).append(op)
            for c in op.children:
                count(c)

        for root in roots:
            count(root)

        cache: dict[str, np.ndarray | float] = {}

        def release(key: str) -> None:
            uses[key] -= 1
            if uses[key] == 0:
                cache.pop(key, None)

        def finish(op: ops.Op, result) -> None:
            if op.fills_nan and np.ndim(result) == 2:
                result[self.panel.outside] = np.nan
            for c in op.children:
                release(c.key)
            cache[op.key] = result

        def value(op: ops.Op):
            if op.key in cache:
                return cache[op.key]
            vals = [value(c) for c in op.children]
            members = groups.pop(op.fusion_key(), None) if op.fusion_key() else None
            if members is not None and len(members) > 1:
                # siblings come out of one kernel pass and wait in the cache for their users
                results = type(op).compute_fused(members, vals, self)
                for m, result in zip(members, results, strict=True):
                    finish(m, result)
            elif isinstance(op, ops.ElemOp) and op.ufunc is not None:
                # an input panel no other operator needs takes the result (no new panel)
                donors = [i for i, c in enumerate(op.children)
                          if uses[c.key] == 1 and not isinstance(c, ops.Field)
                          and isinstance(vals[i], np.ndarray)]  # fmt: skip
                finish(op, op.compute_into(vals, donors) if donors else op.compute(vals, self))
            else:
                finish(op, op.compute(vals, self))
            return cache[op.key]

        for i, root in enumerate(roots):
            sink(i, value(root))
            release(root.key)


def _history_start(panel_dates: pd.Index, start, lookback: int) -> tuple[int, object]:
    """Index of the first date >= start, and the first date needed for ``lookback`` history."""
    first = int(panel_dates.searchsorted(pd.Timestamp(start) if _is_time(panel_dates) else start))
    return first, panel_dates[max(first - lookback, 0)] if len(panel_dates) else None


def _is_time(index: pd.Index) -> bool:
    return isinstance(index, pd.DatetimeIndex)


def _walk(roots: list[ops.Op]):
    stack, seen = list(roots), set()
    while stack:
        op = stack.pop()
        if op.key not in seen:
            seen.add(op.key)
            yield op
            stack.extend(op.children)


def _symbol_chunks(roots: list[ops.Op], n_symbols: int, threads: int | None):
    """[(lo, hi)] symbol ranges, one per thread.

    Coarse chunks, not numba's per-kernel ``prange``: a few hundred short parallel kernels
    each wait for every core, which on a busy machine costs a scheduler slice per kernel,
    while whole-formula chunks keep each core busy on its own (and also spread numpy's
    element-wise operators over the cores). Needs a thread-safe numba threading layer."""
    if threads is None:
        threads = K.numba_threads()
    threads = max(1, min(threads, n_symbols))
    if threads == 1 or any(isinstance(op, ops.CrossSectionalOp) for op in _walk(roots)):
        return [(0, n_symbols)]
    if not K.threadsafe_layer():
        return [(0, n_symbols)]
    bounds = np.linspace(0, n_symbols, threads + 1).round().astype(int)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _empty_output(shape: tuple[int, int], dtype) -> np.ndarray:
    """The result matrix (Fortran order: each column contiguous), on ordinary pages: it is
    written once column by column, so huge pages would only add their first-touch cost."""
    with normal_pages():
        return np.empty(shape, dtype=dtype, order="F")


def _run_chunk(panel, roots, out, pos, single_threaded: bool, dense=None) -> None:
    """Evaluate ``roots`` on ``panel`` (a Panel or PanelSlice) and scatter into ``out``.

    ``dense = (d0, row0, stride)`` when every cell from date d0 on has an output row, at
    ``row0 + (d - d0) * stride + s``: the scatter is then a plain transpose."""
    if single_threaded:
        K.set_thread_kernels(1)  # this thread's numba kernels run serially

    def sink(i: int, result) -> None:
        if np.ndim(result) == 2:
            result = np.ascontiguousarray(result, dtype=np.float64)
            if dense is not None:
                KO.transpose_into(out, i, result, *dense)
            else:
                KO.scatter_into(out, i, result, pos)
        else:
            out[pos[pos >= 0], i] = float(result)

    Evaluator(panel).run(roots, sink)


def evaluate_many(
    exprs: list[str],
    bars: pd.DataFrame,
    *,
    names: list[str] | None = None,
    start=None,
    allow_future: bool = False,
    limits: Limits = Limits(),
    dtype=np.float64,
    field_dtype=np.float64,
    threads: int | None = None,
) -> pd.DataFrame:
    """Evaluate several formulas on ``bars``; one column per formula, indexed by (date, symbol).

    ``threads`` (default: numba's thread count) splits the symbols into that many chunks,
    each evaluated by its own thread with single-threaded kernels, unless a formula has a
    cross-sectional operator (then the kernels themselves run in parallel).

    ``field_dtype=np.float32`` loads fields as float32, so element-wise arithmetic on them runs
    in float32 while rolling kernels still accumulate in float64: Qlib's exact numerics (it
    stores float32), used to verify parity; the default float64 is more accurate.

    With ``start``, only dates >= start are returned, and only the history those dates need
    (the deepest lookback of the formulas) is pivoted and computed: the fast path for
    computing one new day. EMA's infinite memory is cut where its weights fall below 1e-6."""
    fields = [c for c in bars.columns if c not in KEY_COLUMNS]
    roots = [compile_expression(e, fields, allow_future=allow_future, limits=limits) for e in exprs]
    if start is not None:
        dates = pd.Index(pd.unique(bars["date"])).sort_values()
        lookback = max((r.lookback() for r in roots), default=0)
        _, first_needed = _history_start(dates, start, lookback)
        if first_needed is not None:
            bars = bars[bars["date"] >= first_needed]
    panel = Panel(bars, field_dtype)
    first = 0
    if start is not None:
        first = int(
            panel.dates.searchsorted(pd.Timestamp(start) if _is_time(panel.dates) else start)
        )
    rows = _sorted_rows(panel, first)
    # pos[s, d]: the output row of panel cell (s, d), -1 if it has none; the panels are
    # scattered through it tile by tile (a cache-friendly transpose) rather than gathered.
    pos = np.full(panel.shape, -1, dtype=np.int32 if len(rows) < 2**31 else np.int64)
    pos[panel.sym_codes[rows], panel.date_codes[rows]] = np.arange(len(rows))
    out = _empty_output((len(rows), len(roots)), dtype)
    chunks = _symbol_chunks(roots, panel.shape[0], threads)
    n_symbols, n_dates = panel.shape
    is_dense = len(rows) == n_symbols * (n_dates - first)
    if len(chunks) == 1:
        _run_chunk(panel, roots, out, pos, False, (first, 0, n_symbols) if is_dense else None)
    else:
        for f in sorted({op.field for op in _walk(roots) if isinstance(op, ops.Field)}):
            panel.field(f)  # pivot shared fields before the threads read them
        with ThreadPoolExecutor(len(chunks)) as pool:
            jobs = [pool.submit(_run_chunk, panel.slice(lo, hi), roots, out, pos[lo:hi], True,
                                (first, lo, n_symbols) if is_dense else None)
                    for lo, hi in chunks]  # fmt: skip
            for job in jobs:
                job.result()
    columns = names if names is not None else list(exprs)
    return pd.DataFrame(out, index=_output_index(panel, rows), columns=columns, copy=False)


def evaluate_expression(
    expr: str,
    bars: pd.DataFrame,
    *,
    start=None,
    allow_future: bool = False,
    limits: Limits = Limits(),
) -> pd.Series:
    """Evaluate one formula on a long bars table; a float Series indexed by (date, symbol).

    ``allow_future=True`` permits negative lags/windows, for label definitions only."""
    frame = evaluate_many(
        [expr], bars, start=start, allow_future=allow_future, limits=limits, names=[expr]
    )
    return frame[expr]
