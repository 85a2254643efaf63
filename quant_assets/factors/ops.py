"""Operators of the formula language: one small class per operator, one job per class.

Every operator works on whole panels shaped (symbols, dates) at once. Families mirror
Qlib's ``qlib/data/ops.py``: element-wise, rolling (time series of one input), pair rolling
(two inputs), plus cross-sectional operators (one date across all symbols) that Qlib lacks.
``REGISTRY`` maps formula names (and aliases) to classes.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from . import kernels as K
from . import kernels_online as KO

Value = np.ndarray | float


class Op:
    """A node of an expression tree: children are operators, params are literal numbers."""

    name: ClassVar[str] = ""
    # Argument kinds, in order: "expr" (series or number), "series", "window", "lag", "span",
    # "number", "field". ``optional`` gives defaults for trailing arguments.
    signature: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple] = ()
    # True for operators that can turn NaN into a number (comparisons, Count, ...): their
    # result is reset to NaN outside each symbol's listed span, where Qlib has no rows at all.
    fills_nan: ClassVar[bool] = False

    def __init__(self, children: tuple[Op, ...] = (), params: tuple = ()):
        self.children = children
        self.params = params
        parts = [c.key for c in children] + [_fmt(p) for p in params]
        self.key = f"{self.name}({','.join(parts)})"

    def __repr__(self) -> str:
        return self.key

    def lookback(self) -> int:
        """Number of past dates the value at date t depends on (for tail evaluation)."""
        return max((c.lookback() for c in self.children), default=0)

    def lookahead(self) -> int:
        """Number of future dates the value at date t depends on (0 for a valid feature)."""
        return max((c.lookahead() for c in self.children), default=0)

    def compute(self, values: list[Value], ctx) -> Value:
        raise NotImplementedError

    def fusion_key(self) -> str | None:
        """Operators with the same key are computed together by ``compute_fused``."""
        return None


def _fmt(p) -> str:
    if isinstance(p, float) and p.is_integer() and abs(p) < 1e15:
        return str(int(p))
    return repr(p)


# ---------------------------------------------------------------- leaves


class Field(Op):
    """A column of the input table, e.g. ``$close``."""

    def __init__(self, field: str):
        super().__init__()
        self.field = field
        self.key = f"${field}"

    def compute(self, values, ctx):
        return ctx.field(self.field)


class Const(Op):
    """A number literal."""

    def __init__(self, value: float):
        super().__init__()
        self.value = float(value)
        self.key = _fmt(self.value)

    def compute(self, values, ctx):
        return self.value


# ---------------------------------------------------------------- element-wise


class ElemOp(Op):
    """Applies ``fn`` element by element; numbers broadcast against panels."""

    @staticmethod
    def fn(*args):
        raise NotImplementedError

    # the numpy ufunc behind ``fn`` when it can write into a dying input (``compute_into``)
    ufunc: ClassVar[np.ufunc | None] = None

    def compute(self, values, ctx):
        with np.errstate(all="ignore"):
            return self.fn(*values)

    def compute_into(self, values, donors) -> Value:
        """As ``compute``, but may write the result into one of ``values[i]`` for ``i`` in
        ``donors`` (inputs nobody else needs) instead of allocating a new panel."""
        uf = self.ufunc
        if uf is not None:
            with np.errstate(all="ignore"):
                dtype = np.result_type(*values)
                shape = np.broadcast_shapes(*(np.shape(v) for v in values))
                for i in donors:
                    d = values[i]
                    if d.dtype == dtype and d.shape == shape and d.flags.writeable:
                        return uf(*values, out=d)
        return self.compute(values, ctx=None)


def _truth(a):
    # numpy truthiness: non-zero is true, and NaN counts as true (as np.where does in Qlib's If)
    return np.not_equal(a, 0)


def _elem(name: str, arity: int, fn, fills_nan: bool = False) -> type[ElemOp]:
    attrs = {"name": name, "signature": ("expr",) * arity, "fn": staticmethod(fn),
             "fills_nan": fills_nan,
             "ufunc": fn if isinstance(fn, np.ufunc) else None}  # fmt: skip
    return type(name, (ElemOp,), attrs)


def _as_float(fn):
    return lambda a, b: np.asarray(fn(a, b), dtype=np.float64)


Neg = _elem("Neg", 1, np.negative)
Abs = _elem("Abs", 1, np.abs)
Sign = _elem("Sign", 1, np.sign)
Log = _elem("Log", 1, np.log)
Not = _elem("Not", 1, lambda a: np.asarray(~_truth(a), dtype=np.float64), True)
Add = _elem("Add", 2, np.add)
Sub = _elem("Sub", 2, np.subtract)
Mul = _elem("Mul", 2, np.multiply)
Div = _elem("Div", 2, np.divide)
Power = _elem("Power", 2, np.power, True)
SignedPower = _elem("SignedPower", 2, lambda a, b: np.sign(a) * np.power(np.abs(a), b))
Greater = _elem("Greater", 2, np.maximum)
Less = _elem("Less", 2, np.minimum)
# Comparisons give 1.0/0.0; a comparison with NaN is 0.0 (numpy semantics, as in Qlib).
Gt = _elem("Gt", 2, _as_float(np.greater), True)
Ge = _elem("Ge", 2, _as_float(np.greater_equal), True)
Lt = _elem("Lt", 2, _as_float(np.less), True)
Le = _elem("Le", 2, _as_float(np.less_equal), True)
Eq = _elem("Eq", 2, _as_float(np.equal), True)
Ne = _elem("Ne", 2, _as_float(np.not_equal), True)
And = _elem("And", 2, _as_float(lambda a, b: _truth(a) & _truth(b)), True)
Or = _elem("Or", 2, _as_float(lambda a, b: _truth(a) | _truth(b)), True)


class If(ElemOp):
    """``If(cond, a, b)``: a where cond is non-zero, else b."""

    name = "If"
    signature = ("expr", "expr", "expr")
    fills_nan = True

    @staticmethod
    def fn(cond, a, b):
        return np.where(_truth(cond), a, b).astype(np.float64)


# ---------------------------------------------------------------- rolling


class RollingOp(Op):
    """A rolling window of N dates over one series; a negative N (labels only) looks forward
    over the next |N| dates including the current one."""

    signature = ("series", "window")
    # pandas rolling aggregations and rolling.apply (so Qlib) treat +-inf as missing; pandas'
    # Count and Qlib's Cython Slope/Rsquare/Resi do not.
    inf_as_nan: ClassVar[bool] = True

    @property
    def window(self) -> int:
        return self.params[0]

    def lookback(self) -> int:
        return self.children[0].lookback() + max(self.window - 1, 0)

    def lookahead(self) -> int:
        return self.children[0].lookahead() + max(-self.window - 1, 0)

    def kernel(self, x: np.ndarray, n: int, first: np.ndarray) -> np.ndarray:
        """``first[s]``: index of symbol s's first date (windows never reach before it)."""
        raise NotImplementedError

    def compute(self, values, ctx):
        x = _finite(values[0]) if self.inf_as_nan else values[0]
        n = self.window
        if n >= 0:
            return self.kernel(x, n, ctx.first)
        flipped = np.ascontiguousarray(x[:, ::-1])
        return np.ascontiguousarray(self.kernel(flipped, -n, ctx.first_reversed)[:, ::-1])


def _rolling(
    name: str, kernel, doc: str, min_window: int = 1, inf_as_nan: bool = True
) -> type[RollingOp]:
    attrs = {"name": name, "__doc__": doc, "kernel": staticmethod(kernel),
             "min_window": min_window, "inf_as_nan": inf_as_nan}  # fmt: skip
    return type(name, (RollingOp,), attrs)


def _finite(x: np.ndarray) -> np.ndarray:
    """x with +-inf replaced by NaN (a copy only when there is an infinity)."""
    inf = np.isinf(x)
    return np.where(inf, np.nan, x) if inf.any() else x


Sum = _rolling("Sum", lambda x, n, f: K.roll_sum(x, n, 0), "Rolling sum of valid values.")
Mean = _rolling("Mean", lambda x, n, f: K.roll_sum(x, n, 1), "Rolling mean of valid values.")
Count = _rolling(
    "Count",
    lambda x, n, f: K.roll_sum(x, n, 2),
    "Number of valid values in the window.",
    inf_as_nan=False,
)
Count.fills_nan = True
Var = _rolling("Var", lambda x, n, f: KO.roll_var(x, n, 0), "Rolling variance, ddof=1.")
Std = _rolling("Std", lambda x, n, f: KO.roll_var(x, n, 1), "Rolling standard deviation, ddof=1.")
Skew = _rolling("Skew", lambda x, n, f: K.roll_moment(x, n, 2), "Rolling skewness (pandas).", 3)
Kurt = _rolling(
    "Kurt", lambda x, n, f: K.roll_moment(x, n, 3), "Rolling excess kurtosis (pandas).", 4
)
Mad = _rolling(
    "Mad",
    lambda x, n, f: K.roll_moment(x, n, 4),
    "Rolling mean absolute deviation.",
)


class FusedRollingOp(RollingOp):
    """A rolling statistic whose family kernel computes several statistics of one series and
    window in a single pass (Max and IdxMax; quantiles, Med and Rank; Slope, Rsquare and
    Resi). The evaluator groups siblings by ``fusion_key`` and calls ``compute_fused`` once
    for the group; alone, an operator runs the family kernel for its own statistic only."""

    family: ClassVar[str] = ""
    code: ClassVar[float] = 0.0  # this statistic's code for the family kernel

    @staticmethod
    def family_kernel(x, n, first, codes) -> np.ndarray:
        """Statistics ``codes`` (float array) of x's rolling windows, shaped (codes, S, T)."""
        raise NotImplementedError

    def stat_code(self) -> float:
        return self.code

    def fusion_key(self) -> str:
        return f"{self.family}|{self.children[0].key}|{self.window}"

    def kernel(self, x, n, first):
        return self.family_kernel(x, n, first, np.array([self.stat_code()], dtype=np.float64))[0]

    @staticmethod
    def compute_fused(members: list[FusedRollingOp], values, ctx) -> list[np.ndarray]:
        """Results of ``members`` (same family, series and window), in order."""
        head = members[0]
        x = _finite(values[0]) if head.inf_as_nan else values[0]
        codes = np.array([m.stat_code() for m in members], dtype=np.float64)
        n = head.window
        if n >= 0:
            return list(head.family_kernel(x, n, ctx.first, codes))
        flipped = np.ascontiguousarray(x[:, ::-1])
        out = head.family_kernel(flipped, -n, ctx.first_reversed, codes)
        return [np.ascontiguousarray(o[:, ::-1]) for o in out]


def _fused(name: str, family: str, kernel, code: float, doc: str, inf_as_nan: bool = True):
    attrs = {"name": name, "__doc__": doc, "family": family, "code": code,
             "family_kernel": staticmethod(kernel), "inf_as_nan": inf_as_nan}  # fmt: skip
    return type(name, (FusedRollingOp,), attrs)


def _max_kernel(x, n, first, codes):
    return KO.roll_extreme(x, n, True, first, codes)


def _min_kernel(x, n, first, codes):
    return KO.roll_extreme(x, n, False, first, codes)


def _sorted_kernel(x, n, first, codes):
    return KO.roll_sorted(x, n, codes)


def _reg_kernel(x, n, first, codes):
    return KO.roll_reg(x, n, codes)


Max = _fused("Max", "max", _max_kernel, 0, "Rolling maximum.")
IdxMax = _fused("IdxMax", "max", _max_kernel, 1, "1-based position of the max in the window.")
Min = _fused("Min", "min", _min_kernel, 0, "Rolling minimum.")
IdxMin = _fused("IdxMin", "min", _min_kernel, 1, "1-based position of the min in the window.")
Med = _fused("Med", "sorted", _sorted_kernel, 0.5, "Rolling median.")
Rank = _fused(
    "Rank",
    "sorted",
    _sorted_kernel,
    -1.0,
    "Percentile rank of the current value in its window (pandas rank(pct=True), Qlib's Rank).",
)
# Qlib's Cython Slope/Rsquare/Resi do not treat +-inf as missing
Slope = _fused("Slope", "reg", _reg_kernel, 0, "Slope of x on time 1..N.", False)
Rsquare = _fused("Rsquare", "reg", _reg_kernel, 1, "R-squared of x on time 1..N.", False)
Resi = _fused("Resi", "reg", _reg_kernel, 2, "Residual of the current date.", False)
WMA = _rolling(
    "WMA",
    lambda x, n, f: K.roll_weighted(x, n, 0, f),
    "Qlib's weighted moving average.",
)
DecayLinear = _rolling(
    "DecayLinear", lambda x, n, f: K.roll_weighted(x, n, 1, f), "Linearly decaying weighted mean."
)
Prod = _rolling("Prod", lambda x, n, f: K.roll_weighted(x, n, 2, f), "Rolling product.")


class Quantile(FusedRollingOp):
    """Rolling quantile with linear interpolation: ``Quantile(x, N, q)``."""

    name = "Quantile"
    signature = ("series", "window", "number")
    family = "sorted"
    family_kernel = staticmethod(_sorted_kernel)

    def stat_code(self) -> float:
        return float(self.params[1])


class Ref(RollingOp):
    """Value ``lag`` dates ago (NaN before the first date); a negative lag looks ahead."""

    name = "Ref"
    signature = ("series", "lag")

    def lookback(self) -> int:
        return self.children[0].lookback() + max(self.window, 0)

    def lookahead(self) -> int:
        return self.children[0].lookahead() + max(-self.window, 0)

    def compute(self, values, ctx):
        return shift(values[0], self.window)


class Delta(Ref):
    """``x - Ref(x, N)``."""

    name = "Delta"

    def compute(self, values, ctx):
        with np.errstate(invalid="ignore"):  # inf - inf is NaN, as for Sub
            return values[0] - shift(values[0], self.window)


class EMA(RollingOp):
    """Exponential mean: ``EMA(x, N)`` uses span N (alpha = 2/(N+1)); ``EMA(x, a)`` with
    0 < a < 1 uses alpha = a (pandas ewm, adjust=True, as Qlib)."""

    name = "EMA"
    signature = ("series", "span")

    @property
    def alpha(self) -> float:
        n = self.params[0]
        return n if 0 < n < 1 else 2.0 / (n + 1.0)

    def lookback(self) -> int:
        # An EMA has infinite memory; like Qlib, cut where the weights fall below 1e-6.
        a = self.alpha
        extra = int(math.ceil(math.log(1e-6) / math.log(1 - a))) if a < 1 else 0
        return self.children[0].lookback() + extra

    def lookahead(self) -> int:
        return self.children[0].lookahead()

    def compute(self, values, ctx):
        return K.ewm_mean(_finite(values[0]), self.alpha)


def shift(x: np.ndarray, lag: int) -> np.ndarray:
    """Shift a (symbols, dates) panel ``lag`` dates later (negative: earlier), NaN-filled."""
    out = np.full_like(x, np.nan)
    if lag == 0:
        out[:] = x
    elif lag > 0:
        if lag < x.shape[1]:
            out[:, lag:] = x[:, :-lag]
    elif -lag < x.shape[1]:
        out[:, :lag] = x[:, -lag:]
    return out


# ---------------------------------------------------------------- pair rolling


class PairRollingOp(RollingOp):
    """Rolling statistic of two series over the dates where both are valid."""

    signature = ("series", "series", "window")
    kind: ClassVar[int] = 0

    def lookback(self) -> int:
        return max(c.lookback() for c in self.children) + max(self.window - 1, 0)

    def lookahead(self) -> int:
        return max(c.lookahead() for c in self.children) + max(-self.window - 1, 0)

    def compute(self, values, ctx):
        x, y = (_finite(v) for v in values)
        n = self.window
        if n >= 0:
            return KO.roll_pair(x, y, n, self.kind)
        x, y = (np.ascontiguousarray(v[:, ::-1]) for v in (x, y))
        return np.ascontiguousarray(KO.roll_pair(x, y, -n, self.kind)[:, ::-1])


class Cov(PairRollingOp):
    """Rolling covariance, ddof=1."""

    name = "Cov"
    kind = 0


class Corr(PairRollingOp):
    """Rolling Pearson correlation (NaN where either window's std <= 2e-5, as Qlib)."""

    name = "Corr"
    kind = 1


# ---------------------------------------------------------------- cross-sectional


class CrossSectionalOp(Op):
    """Operates on each date across all symbols present on that date."""

    signature = ("series",)


class CSRank(CrossSectionalOp):
    """Percentile rank across symbols (average ties, rank/count), NaN stays NaN."""

    name = "CSRank"

    def compute(self, values, ctx):
        return K.cs_rank(values[0])


class CSZScore(CrossSectionalOp):
    """(x - mean) / std across symbols, std with ddof=1."""

    name = "CSZScore"

    def compute(self, values, ctx):
        x = values[0]
        with np.errstate(all="ignore"), _quiet():
            return (x - np.nanmean(x, axis=0)) / np.nanstd(x, axis=0, ddof=1)


class CSNeutralize(CrossSectionalOp):
    """x minus its group mean on each date: ``CSNeutralize(x, $industry)``."""

    name = "CSNeutralize"
    signature = ("series", "field")

    def compute(self, values, ctx):
        codes, n_groups = ctx.group_codes(self.children[1].field)
        return K.cs_group_demean(values[0], codes, n_groups)


class CSWinsorize(CrossSectionalOp):
    """Clip each date's values to its q and 1-q quantiles: ``CSWinsorize(x, 0.01)``."""

    name = "CSWinsorize"
    signature = ("series", "number")
    optional = (0.01,)

    def compute(self, values, ctx):
        x = values[0]
        q = float(self.params[0])
        with np.errstate(all="ignore"), _quiet():
            lo, hi = np.nanquantile(x, [q, 1 - q], axis=0)
        return np.clip(x, lo, hi)


class Scale(CrossSectionalOp):
    """x scaled so that the sum of |x| across symbols equals a (default 1), as WQ101's scale."""

    name = "Scale"
    signature = ("series", "number")
    optional = (1.0,)

    def compute(self, values, ctx):
        x = values[0]
        with np.errstate(all="ignore"):
            return x * float(self.params[0]) / np.nansum(np.abs(x), axis=0)


class _quiet:
    """Silence numpy's 'all-NaN slice' warnings for dates with no valid values."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


# ---------------------------------------------------------------- registry

_CLASSES = [
    Neg, Abs, Sign, Log, Not, Add, Sub, Mul, Div, Power, SignedPower, Greater, Less,
    Gt, Ge, Lt, Le, Eq, Ne, And, Or, If,
    Ref, Delta, Sum, Mean, Count, Var, Std, Skew, Kurt, Mad, Max, Min, IdxMax, IdxMin,
    Med, Quantile, Rank, Slope, Rsquare, Resi, WMA, EMA, DecayLinear, Prod,
    Cov, Corr,
    CSRank, CSZScore, CSNeutralize, CSWinsorize, Scale,
]  # fmt: skip

REGISTRY: dict[str, type[Op]] = {cls.name: cls for cls in _CLASSES}
# WorldQuant-101 spellings of operators that already exist.
ALIASES = {
    "Delay": "Ref",
    "TsMax": "Max",
    "TsMin": "Min",
    "TsArgMax": "IdxMax",
    "TsArgMin": "IdxMin",
    "TsRank": "Rank",
    "Stddev": "Std",
    "Correlation": "Corr",
    "Covariance": "Cov",
    "Product": "Prod",
}
REGISTRY.update({alias: REGISTRY[target] for alias, target in ALIASES.items()})
