"""The formula language's syntax and every rejection path, with clear messages."""

from __future__ import annotations

import pytest

from quant_assets.factors import FormulaError, Limits, compile_expression, evaluate_expression
from quant_assets.factors.parser import Call, FieldRef, Number, parse, tokenize

FIELDS = ["open", "high", "low", "close", "volume", "vwap", "industry"]


def compile_(expr, **kw):
    return compile_expression(expr, FIELDS, **kw)


def test_tokenize_positions():
    toks = tokenize("Mean($close, 5) >= 1.5e-3")
    assert [(t.kind, t.text, t.pos) for t in toks[:3]] == [
        ("name", "Mean", 0), ("op", "(", 4), ("field", "$close", 5)
    ]  # fmt: skip
    assert toks[-2].text == "1.5e-3" and toks[-1].kind == "end"


def test_precedence_and_unary_minus():
    tree = parse("-$a + $b * 2 > 1 & $c | $d")
    assert tree.name == "Or"
    left = tree.args[0]
    assert left.name == "And"
    cmp_ = left.args[0]
    assert cmp_.name == "Gt"
    add = cmp_.args[0]
    assert add.name == "Add" and add.args[0] == Call("Neg", (FieldRef("a", 1),), 0)
    assert add.args[1].name == "Mul" and add.args[1].args[1] == Number(2.0, True, 11)


def test_canonical_keys_share_aliases_and_spacing():
    a = compile_("Delay($close,1) / Mean( $close , 5 )")
    b = compile_("Ref($close, 1)/Mean($close,5)")
    assert a.key == b.key == "Div(Ref($close,1),Mean($close,5))"


def test_constant_folding():
    op = compile_("$close * (2 + 3)")
    assert op.key == "Mul($close,5)"


@pytest.mark.parametrize(
    ("expr", "message", "pos"),
    [
        ("Mean($close, 5) # 2", "unexpected character '#'", 16),
        ("Mean($close, 5", "expected ')', found end of formula", 14),
        ("Mean($close 5)", "expected ')', found '5'", 12),
        ("", "empty formula", 0),
        ("$close +", "expected a number, field or operator, found end of formula", 8),
        ("$close > 1 > 0", "chained comparisons are ambiguous", 11),
        ("$close )", "unexpected ')'", 7),
        ("$price / 2", "unknown field $price (available: $close, ", 0),
        ("Foo($close)", "unknown operator 'Foo'", 0),
        ("mean($close, 5)", "unknown operator 'mean'; did you mean Mean?", 0),
        ("Mean($close)", "Mean takes 2 arguments (series, window), got 1", 0),
        ("Abs($close, 2)", "Abs takes 1 arguments (expr), got 2", 0),
        ("Mean($close, 2.5)", "argument 2 of Mean must be an integer window, got 2.5", 13),
        ("Mean($close, $open)", "argument 2 of Mean must be a number literal", 13),
        ("Mean(5, 5)", "argument 1 of Mean must be an expression of fields, not a number", 5),
        ("Mean($close, 0)", "argument 2 of Mean must be a non-zero window", 13),
        ("Skew($close, 2)", "Skew needs a window of at least 3", 13),
        ("Quantile($close, 5, 1.5)", "(quantile) must lie in [0, 1], got 1.5", 20),
        ("CSNeutralize($close, Abs($industry))", "must be a field such as $industry", 21),
        ("EMA($close, -3)", "must be a positive span or 0 < alpha < 1", 12),
        ("1 + 2", "formula must reference at least one field", 0),
    ],
)
def test_rejections_have_clear_messages(expr, message, pos):
    with pytest.raises(FormulaError) as info:
        compile_(expr)
    assert message in info.value.message
    assert info.value.pos == pos
    assert "^" in str(info.value)  # the caret under the position


@pytest.mark.parametrize(
    "expr",
    ["Ref($close, -1)", "Mean($close, -5)", "Corr($close, $volume, -5)", "Delta($close, -2)",
     "$close / Ref(Mean($close, 5), -3) - 1"],
)  # fmt: skip
def test_look_ahead_guard(expr):
    with pytest.raises(FormulaError, match="future"):
        compile_(expr)
    op = compile_(expr, allow_future=True)
    assert op.lookahead() > 0


def test_label_with_allow_future(single):
    bars = single([1.0, 2.0, 4.0, 8.0])
    label = evaluate_expression("Ref($close, -1) / $close - 1", bars, allow_future=True)
    assert label.tolist()[:3] == [1.0, 1.0, 1.0]
    assert label.isna().tolist()[3]
    fwd_mean = evaluate_expression("Mean($close, -2)", bars, allow_future=True)
    assert fwd_mean.tolist() == [1.5, 3.0, 6.0, 8.0]


def test_depth_and_size_limits():
    deep = "Abs(" * 70 + "$close" + ")" * 70
    with pytest.raises(FormulaError, match="nests deeper than the limit of 64"):
        compile_(deep)
    compile_(deep, limits=Limits(max_depth=100))
    wide = "$low"
    for _ in range(10):  # balanced: 2**10 leaves, depth about 20
        wide = f"({wide})*({wide})"
    with pytest.raises(FormulaError, match="more than 1000 nodes"):
        compile_(wide)
    with pytest.raises(FormulaError, match="nests deeper"):
        compile_("+".join(["$close"] * 100))  # a long left-associative chain is deep too
    with pytest.raises(FormulaError, match="limit 10"):
        compile_("$close + $open", limits=Limits(max_length=10))
    with pytest.raises(FormulaError, match="exceeds the limit 100"):
        compile_("Mean($close, 500)", limits=Limits(max_window=100))


def test_parenthesised_unary_depth_counts():
    with pytest.raises(FormulaError, match="nests deeper"):
        compile_("-" * 80 + "$close")


def test_non_string_rejected():
    with pytest.raises(FormulaError, match="must be a string"):
        compile_(42)
