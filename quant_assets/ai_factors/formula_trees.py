"""Formulas as syntax trees: printing a tree back to the formula language, its size, its
subtrees, replacing one, and value-keeping simplifications.

The trees are the parser's own nodes (`Number`, `FieldRef`, `Call`), so a tree built here is
always one the engine would parse; the genetic search edits them, never strings.
"""

from __future__ import annotations

from collections.abc import Iterator

from quant_assets.factors.parser import Call, FieldRef, Node, Number, parse

Path = tuple[int, ...]


def unparse(node: Node) -> str:
    """The formula text of a tree, in call form (`Div($close, Ref($close, 5))`)."""
    if isinstance(node, Number):
        if node.is_int:
            return str(int(node.value))
        return repr(float(node.value))
    if isinstance(node, FieldRef):
        return f"${node.name}"
    return f"{node.name}({', '.join(unparse(a) for a in node.args)})"


def size(node: Node) -> int:
    """The number of nodes, numbers included: the complexity the search pays for."""
    if isinstance(node, Call):
        return 1 + sum(size(a) for a in node.args)
    return 1


def subtrees(node: Node, path: Path = ()) -> Iterator[tuple[Path, Node]]:
    """Every (path, subtree), the root first; a path lists argument positions from the root."""
    yield path, node
    if isinstance(node, Call):
        for i, arg in enumerate(node.args):
            yield from subtrees(arg, (*path, i))


def replace(node: Node, path: Path, new: Node) -> Node:
    """A copy of `node` with the subtree at `path` replaced by `new`."""
    if not path:
        return new
    assert isinstance(node, Call)
    args = list(node.args)
    args[path[0]] = replace(args[path[0]], path[1:], new)
    return Call(node.name, tuple(args), 0)


def to_tree(formula: str) -> Node:
    """The parser's tree of a formula (raises FormulaError)."""
    return parse(formula)


# Operators whose value is never negative: Abs of them changes nothing.
_NON_NEGATIVE = {"Abs", "Rank", "CSRank", "Std", "Count", "Var", "Mad"}
# Applying these twice is applying them once.
_IDEMPOTENT = {"Abs", "CSRank", "Sign"}


def simplify(node: Node) -> Node:
    """Rewrites that keep the values and drop nodes a search grows by chance:
    Abs(x) for x never negative, f(f(x)) for idempotent f, Neg(Neg(x))."""
    if not isinstance(node, Call):
        return node
    args = tuple(simplify(a) for a in node.args)
    inner = args[0] if args else None
    if isinstance(inner, Call):
        if node.name == "Abs" and inner.name in _NON_NEGATIVE:
            return inner
        if node.name in _IDEMPOTENT and inner.name == node.name:
            return inner
        if node.name == "Neg" and inner.name == "Neg":
            return inner.args[0]
    return Call(node.name, args, node.pos)
