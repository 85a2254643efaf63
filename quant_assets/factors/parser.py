"""Tokenizer and recursive-descent parser for the Qlib-style formula language.

The parser only builds a syntax tree (``Number``, ``FieldRef``, ``Call``); it never evaluates
user text with Python. Operators are resolved and type-checked later, in ``engine.build``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class FormulaError(ValueError):
    """A formula that cannot be parsed, type-checked or safely evaluated."""

    def __init__(self, message: str, expr: str | None = None, pos: int | None = None):
        self.message = message
        self.expr = expr
        self.pos = pos
        text = message
        if expr is not None and pos is not None:
            text = f"{message} at position {pos}\n  {expr}\n  {' ' * pos}^"
        super().__init__(text)


@dataclass(frozen=True)
class Number:
    value: float
    is_int: bool
    pos: int


@dataclass(frozen=True)
class FieldRef:
    name: str
    pos: int


@dataclass(frozen=True)
class Call:
    """An operator application; infix operators are parsed into calls too (``a+b`` -> Add)."""

    name: str
    args: tuple
    pos: int


Node = Number | FieldRef | Call

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<field>\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|==|!=|[-+*/<>&|(),])
    """,
    re.VERBOSE,
)

_BINARY = {
    "|": "Or",
    "&": "And",
    ">": "Gt",
    "<": "Lt",
    ">=": "Ge",
    "<=": "Le",
    "==": "Eq",
    "!=": "Ne",
    "+": "Add",
    "-": "Sub",
    "*": "Mul",
    "/": "Div",
}
_COMPARISONS = (">", "<", ">=", "<=", "==", "!=")


@dataclass(frozen=True)
class Token:
    kind: str  # number, field, name, op, end
    text: str
    pos: int


def tokenize(expr: str) -> list[Token]:
    """Split ``expr`` into tokens; an unknown character raises FormulaError with its position."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if m is None:
            raise FormulaError(f"unexpected character {expr[pos]!r}", expr, pos)
        kind = m.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", len(expr)))
    return tokens


class _Parser:
    """Precedence, loosest first: ``|``, ``&``, comparisons (not chained), ``+ -``, ``* /``,
    unary ``- +``, atoms (numbers, fields, calls, parentheses)."""

    def __init__(self, expr: str, max_depth: int):
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0
        self.depth = 0
        self.max_depth = max_depth

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.take()
        if tok.text != text:
            found = "end of formula" if tok.kind == "end" else repr(tok.text)
            raise FormulaError(f"expected {text!r}, found {found}", self.expr, tok.pos)
        return tok

    def _enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise FormulaError(
                f"formula nests deeper than the limit of {self.max_depth}", self.expr, pos
            )

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise FormulaError("empty formula", self.expr, 0)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            raise FormulaError(f"unexpected {tok.text!r}", self.expr, tok.pos)
        return node

    def _binary_level(self, ops: tuple[str, ...], sub) -> Node:
        left = sub()
        chain = 0
        while self.peek().kind == "op" and self.peek().text in ops:
            tok = self.take()
            # a left-associative chain a+b+c+... nests one level deeper per operator
            self._enter(tok.pos)
            chain += 1
            right = sub()
            left = Call(_BINARY[tok.text], (left, right), tok.pos)
        self.depth -= chain
        return left

    def parse_or(self) -> Node:
        return self._binary_level(("|",), self.parse_and)

    def parse_and(self) -> Node:
        return self._binary_level(("&",), self.parse_cmp)

    def parse_cmp(self) -> Node:
        left = self.parse_add()
        tok = self.peek()
        if tok.kind == "op" and tok.text in _COMPARISONS:
            self.take()
            right = self.parse_add()
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in _COMPARISONS:
                raise FormulaError(
                    "chained comparisons are ambiguous; use parentheses", self.expr, nxt.pos
                )
            left = Call(_BINARY[tok.text], (left, right), tok.pos)
        return left

    def parse_add(self) -> Node:
        return self._binary_level(("+", "-"), self.parse_mul)

    def parse_mul(self) -> Node:
        return self._binary_level(("*", "/"), self.parse_unary)

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("-", "+"):
            self.take()
            self._enter(tok.pos)
            operand = self.parse_unary()
            self.depth -= 1
            return operand if tok.text == "+" else Call("Neg", (operand,), tok.pos)
        return self.parse_atom()

    def parse_atom(self) -> Node:
        tok = self.take()
        if tok.kind == "number":
            is_int = re.fullmatch(r"\d+", tok.text) is not None
            return Number(float(tok.text), is_int, tok.pos)
        if tok.kind == "field":
            return FieldRef(tok.text[1:], tok.pos)
        if tok.kind == "name":
            self.expect("(")
            self._enter(tok.pos)
            args = []
            if self.peek().text != ")":
                args.append(self.parse_or())
                while self.peek().text == ",":
                    self.take()
                    args.append(self.parse_or())
            self.expect(")")
            self.depth -= 1
            return Call(tok.text, tuple(args), tok.pos)
        if tok.text == "(":
            self._enter(tok.pos)
            node = self.parse_or()
            self.expect(")")
            self.depth -= 1
            return node
        found = "end of formula" if tok.kind == "end" else repr(tok.text)
        raise FormulaError(
            f"expected a number, field or operator, found {found}", self.expr, tok.pos
        )


def parse(expr: str, max_depth: int = 64) -> Node:
    """Parse ``expr`` into a syntax tree; raises FormulaError on any syntax problem."""
    if not isinstance(expr, str):
        raise FormulaError(f"formula must be a string, got {type(expr).__name__}")
    return _Parser(expr, max_depth).parse()
