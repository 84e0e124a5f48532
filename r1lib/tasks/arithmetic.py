"""Multi-step integer arithmetic: "Compute (12 + 7) * 3 - 5."

Difficulty levels (number of operations, operand range, operators, largest intermediate |value|):

====== ========== ========= =========== ===============
level  operations operands  operators   max |value|
====== ========== ========= =========== ===============
1      2          1..10     + - *       100, never < 0
2      3          1..12     + - * /     200, never < 0
3      4          1..15     + - * /     500, never < 0
4      5          1..20     + - * /     1000
5      6          1..25     + - * /     2000
====== ========== ========= =========== ===============

Division is exact by construction (the divisor is a literal from 2..12 that divides the dividend).
Parentheses appear where the expression tree needs them; a right operand of equal precedence is
always parenthesised (``12 - (3 + 4)``, ``2 * (6 * 3)``), so the written expression parses back to
exactly the tree whose post-order the steps follow.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1lib.tasks.base import Example
from r1lib.tasks.expr import check_difficulty, operand, render_steps

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class _Level:
    ops: int
    max_operand: int
    operators: str
    max_abs: int
    allow_negative: bool


LEVELS: dict[int, _Level] = {
    1: _Level(2, 10, "+-*", 100, False),
    2: _Level(3, 12, "+-*/", 200, False),
    3: _Level(4, 15, "+-*/", 500, False),
    4: _Level(5, 20, "+-*/", 1000, True),
    5: _Level(6, 25, "+-*/", 2000, True),
}


@dataclass(frozen=True)
class _Node:
    """A leaf (``op`` is None) or a binary operation with its exact integer value."""

    value: int
    op: str | None = None
    left: "_Node | None" = None
    right: "_Node | None" = None


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    assert b != 0 and a % b == 0, "division is exact by construction"
    return a // b


def _build(rng: random.Random, n_ops: int, level: _Level) -> _Node:
    if n_ops == 0:
        return _Node(rng.randint(1, level.max_operand))
    op = rng.choice(level.operators)
    if op == "/":
        left = _build(rng, n_ops - 1, level)
        divisors = [d for d in range(2, 13) if left.value != 0 and left.value % d == 0]
        if divisors:
            d = rng.choice(divisors)
            return _Node(left.value // d, "/", left, _Node(d))
        op = rng.choice("+-*")
        right = _Node(rng.randint(1, level.max_operand))
    else:
        n_left = rng.randint(0, n_ops - 1)
        left = _build(rng, n_left, level)
        right = _build(rng, n_ops - 1 - n_left, level)
    if op == "-" and not level.allow_negative and left.value < right.value:
        left, right = right, left
    return _Node(_apply(op, left.value, right.value), op, left, right)


def _render(node: _Node, parent_prec: int = 0, is_right: bool = False) -> str:
    if node.op is None:
        return str(node.value)
    assert node.left is not None and node.right is not None
    prec = _PREC[node.op]
    text = f"{_render(node.left, prec)} {node.op} {_render(node.right, prec, True)}"
    needs_parens = prec < parent_prec or (is_right and prec == parent_prec)
    return f"({text})" if needs_parens else text


def _steps(node: _Node, out: list[tuple[str, str]]) -> None:
    """Post-order (left subtree, right subtree, then this node): one step per operation.

    A negative right operand is parenthesised (``3 - (-7)``); a negative left one need not be.
    """
    if node.op is None:
        return
    assert node.left is not None and node.right is not None
    _steps(node.left, out)
    _steps(node.right, out)
    out.append((f"{node.left.value} {node.op} {operand(node.right.value)}", str(node.value)))


def _values(node: _Node) -> list[int]:
    if node.op is None:
        return [node.value]
    assert node.left is not None and node.right is not None
    return _values(node.left) + _values(node.right) + [node.value]


class ArithmeticTask:
    """Multi-step integer arithmetic with +, -, * and exact /."""

    name = "arithmetic"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        """Draw one problem at ``difficulty`` (1..5, see the module docstring)."""
        level = LEVELS[check_difficulty(difficulty)]
        while True:  # rejection: keep intermediate values small (and >= 0 at levels 1-3)
            tree = _build(rng, level.ops, level)
            values = _values(tree)
            if all(abs(v) <= level.max_abs for v in values) and (
                    level.allow_negative or min(values) >= 0):
                break
        expression = _render(tree)
        steps: list[tuple[str, str]] = []
        _steps(tree, steps)
        answer = str(tree.value)
        return Example(id=f"{self.name}-unassigned", task=self.name, problem=f"Compute {expression}.",
                       answer=answer, solution=render_steps(steps),
                       meta={"difficulty": difficulty, "steps": steps, "expression": expression})

    def key(self, example: Example) -> str:
        """Canonical key for split assignment and de-duplication: the expression itself."""
        return str(example.meta["expression"])
