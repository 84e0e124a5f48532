"""Linear equations in x with an integer solution: "Solve for x: 3x + 5 = 20."

Difficulty levels:

1. ``ax + b = c`` or ``ax - b = c``: a in 2..12, x in 1..20, b in 1..40 (2 steps).
2. ``ax + b = c`` / ``ax - b = c`` / ``b + ax = c`` / ``c = ax + b``; a in ±2..12, x in -12..12,
   b in 1..30 (2 steps).
3. x on both sides, ``ax + b = cx + d``; a, c in 1..12 with |a - c| >= 2, x in -10..15,
   b in ±1..30, d whatever makes x the solution (3 steps: collect, coefficient, solve).
4. a bracket on the left, ``a(x + p) + b = cx + d``; a in 2..9, c in 1..9, p in ±1..9, b in ±1..20
   or absent (4 steps: expand, collect, coefficient, solve).
5. brackets on both sides, ``a(x + p) + b = c(x + q) + d``; a, c in 2..9 (5 steps).

Step convention (shared by all generators, see :func:`r1lib.tasks.registry.step_expression`):
every step's ``lhs`` ends in a plain arithmetic expression, which is the text after the last ``=``
(or the whole lhs when it has none), and ``rhs`` is its value as a number string. E.g.

    3x = 20 - 5 = 15
    x = 15 / 3 = 5
    5x - 2x = 12 + 3 = 15
    the coefficient of x = 5 - 2 = 3
    3x = 15, so x = 15 / 3 = 5
    the constant from 3(x - 4) = 3 * (-4) = -12
"""

from __future__ import annotations

import random

from r1lib.tasks.base import Example
from r1lib.tasks.expr import check_difficulty, operand, render_steps, render_terms


def _x_term(coef: int) -> str:
    """``3x``, ``x``, ``-x``, ``-3x``."""
    if coef == 1:
        return "x"
    if coef == -1:
        return "-x"
    return f"{coef}x"


def _bracket(a: int, p: int) -> str:
    """``3(x + 4)`` / ``3(x - 4)``."""
    return f"{a}(x + {p})" if p >= 0 else f"{a}(x - {-p})"


def _side(x_part: str, const: int) -> str:
    """An equation side: x part followed by a signed constant (omitted when 0)."""
    if const == 0:
        return x_part
    return f"{x_part} + {const}" if const > 0 else f"{x_part} - {-const}"


def _nonzero(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform in ±lo..hi (never 0)."""
    return rng.randint(lo, hi) * rng.choice((1, -1))


class LinearTask:
    """Linear equations in one unknown with an integer solution."""

    name = "linear"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        """Draw one equation at ``difficulty`` (1..5, see the module docstring)."""
        check_difficulty(difficulty)
        if difficulty <= 2:
            equation, steps, x = self._one_sided(rng, difficulty)
        else:
            equation, steps, x = self._two_sided(rng, difficulty)
        answer = str(x)
        return Example(id=f"{self.name}-unassigned", task=self.name, problem=f"Solve for x: {equation}.",
                       answer=answer, solution=render_steps(steps),
                       meta={"difficulty": difficulty, "steps": steps, "equation": equation})

    @staticmethod
    def _one_sided(rng: random.Random, difficulty: int) -> tuple[str, list[tuple[str, str]], int]:
        if difficulty == 1:
            a, x, b = rng.randint(2, 12), rng.randint(1, 20), rng.randint(1, 40)
            form = rng.choice(("ax+b=c", "ax-b=c"))
        else:
            a, x, b = _nonzero(rng, 2, 12), rng.randint(-12, 12), rng.randint(1, 30)
            form = rng.choice(("ax+b=c", "ax-b=c", "b+ax=c", "c=ax+b"))
        signed_b = -b if form == "ax-b=c" else b
        ax = a * x
        c = ax + signed_b
        left = {"ax+b=c": f"{_x_term(a)} + {b}", "ax-b=c": f"{_x_term(a)} - {b}",
                "b+ax=c": f"{b} + {_x_term(a)}" if a > 0 else f"{b} - {_x_term(-a)}",
                "c=ax+b": f"{_x_term(a)} + {b}"}[form]
        equation = f"{c} = {left}" if form == "c=ax+b" else f"{left} = {c}"
        steps = [(f"{_x_term(a)} = {render_terms([c, -signed_b])}", str(ax)),
                 (f"x = {ax} / {operand(a)}", str(x))]
        return equation, steps, x

    @staticmethod
    def _two_sided(rng: random.Random, difficulty: int) -> tuple[str, list[tuple[str, str]], int]:
        x = rng.randint(-10, 15)
        a_range, c_range = {3: ((1, 12), (1, 12)), 4: ((2, 9), (1, 9)), 5: ((2, 9), (2, 9))}[difficulty]
        while True:  # the coefficients differ by at least 2, so the last step is a real division
            a, c = rng.randint(*a_range), rng.randint(*c_range)
            if abs(a - c) >= 2:
                break
        steps: list[tuple[str, str]] = []
        if difficulty == 3:
            b = _nonzero(rng, 1, 30)
            left_x, right_x = _x_term(a), _x_term(c)
            const_left, const_right = [b], []
        else:
            p = _nonzero(rng, 1, 9)
            b = _nonzero(rng, 1, 20) if (difficulty == 5 or rng.random() < 0.7) else 0
            left_x, right_x = _bracket(a, p), _x_term(c)
            steps.append((f"the constant from {left_x} = {a} * {operand(p)}", str(a * p)))
            const_left, const_right = [a * p, b], []
            if difficulty == 5:
                q = _nonzero(rng, 1, 9)
                right_x = _bracket(c, q)
                steps.append((f"the constant from {right_x} = {c} * {operand(q)}", str(c * q)))
                const_right = [c * q]
        # The last constant d is whatever makes x the solution:
        # a*x + sum(const_left) = c*x + sum(const_right) + d.
        d = a * x + sum(const_left) - c * x - sum(const_right)
        const_right.append(d)
        equation = f"{_side(left_x, b)} = {_side(right_x, d)}"
        # Move the x terms to the side with the larger coefficient, the constants to the other side.
        big, small = (a, c) if a > c else (c, a)
        consts = const_right + [-k for k in const_left] if a > c else const_left + [-k for k in const_right]
        total, coef = sum(consts), big - small
        assert total == coef * x
        steps.append((f"{_x_term(big)} - {_x_term(small)} = {render_terms(consts)}", str(total)))
        steps.append((f"the coefficient of x = {big} - {small}", str(coef)))
        steps.append((f"{_x_term(coef)} = {total}, so x = {total} / {coef}", str(x)))
        return equation, steps, x

    def key(self, example: Example) -> str:
        """Canonical key: the equation text."""
        return str(example.meta["equation"])
