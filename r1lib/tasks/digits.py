"""Digit-level procedures: multi-digit addition, subtraction with borrows, multiplication by one digit,
and a chain of an addition and a subtraction. The embedded base model's core skill.

Why these tasks. RL amplifies a behaviour the base model already has (Echo Chamber, arXiv 2504.07912),
so the tiny base model needs a step-by-step procedure it can carry out *reliably*, and answers that
cannot be guessed. Column arithmetic is such a procedure: every written step is a single-digit fact
(``8 + 7 + 1 = 16``, ``17 - 8 - 0 = 9``, ``7 * 6 + 4 = 46``: a few hundred facts in all) or a copy, which
a ~1M-parameter model learns from a few million tokens, while the answer-only form of the same problem
is not learnable at that size (Lee et al. 2023, "Teaching Arithmetic to Small Transformers": a detailed
scratchpad makes multi-digit addition learnable from little data). Answers have at least 4 digits, so
guessing earns nothing.

Difficulty ``L`` (1..5) sets the length of the longer operand: ``L + 2`` digits for addition and
multiplication, ``L + 3`` for subtraction and the chain (so that every answer has at least 4 digits).
The default training range is levels 1-2; the *harder* held-out split is one level (one digit) more.

======== ======================== ======================= =====================
level    addition / multiply       subtraction / chain      answer
======== ======================== ======================= =====================
1        3 digits                  4 digits                 >= 1000
2        4 digits                  5 digits                 >= 1000
L        L + 2 digits              L + 3 digits             >= 1000
======== ======================== ======================= =====================

The procedure itself (:func:`columns`) is shared by the corpus (which writes it out in several styles,
``r1lib.corpus``) and by the analysis of sampled solutions (``r1lib.analysis.check_procedure``).
``meta["steps"]`` holds one ``(lhs, rhs)`` per column (``"8 + 7 + 1"``, ``"16"``) and, last, the whole
operation (``"386 + 7776"``, ``"8162"``), so :func:`r1lib.tasks.verify_steps` re-checks every column.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1lib.tasks.base import Example
from r1lib.tasks.expr import check_difficulty, render_steps

MIN_ANSWER = 1000
"""Every answer has at least 4 digits: a 1M-parameter model cannot guess it."""


@dataclass(frozen=True)
class Column:
    """One column of a written procedure, right to left.

    ``a`` / ``b``: what is left of the operands before this column (the careful style restates them;
    an exhausted operand is ``"0"``); ``lhs``: the single-digit fact of the column (``"8 + 7 + 1"``);
    ``value``: its result; ``digit``: the digit written; ``carry``: carried (or borrowed) into the next
    column; ``partial``: the digits of the result written so far (``"62"``).
    """

    a: str
    b: str
    lhs: str
    value: int
    digit: int
    carry: int
    partial: str


@dataclass(frozen=True)
class Procedure:
    """One written operation ``a op b`` as a list of columns, and its result."""

    a: int
    op: str
    b: int
    columns: tuple[Column, ...]
    result: int


def _rest(digits: str) -> str:
    """The operand left after dropping its last digit (``"0"`` when nothing is left)."""
    return digits[:-1] or "0"


def columns(a: int, op: str, b: int) -> Procedure:
    """The column procedure of ``a + b``, ``a - b`` (``a >= b >= 0``) or ``a * b`` (``b`` one digit).

    >>> [c.lhs + " = " + str(c.value) for c in columns(386, "+", 7776).columns]
    ['6 + 6 + 0 = 12', '8 + 7 + 1 = 16', '3 + 7 + 1 = 11', '0 + 7 + 1 = 8']
    >>> [c.lhs for c in columns(5032, "-", 1478).columns], columns(5032, "-", 1478).result
    (['12 - 8 - 0', '13 - 7 - 1', '10 - 4 - 1', '5 - 1 - 1'], 3554)
    >>> [c.lhs for c in columns(3867, "*", 6).columns], columns(3867, "*", 6).result
    (['7 * 6 + 0', '6 * 6 + 4', '8 * 6 + 4', '3 * 6 + 5', '0 * 6 + 2'], 23202)
    """
    if a < 0 or b < 0:
        raise ValueError(f"columns: operands must be >= 0, got {a} {op} {b}")
    if op == "-" and a < b:
        raise ValueError(f"columns: {a} - {b} would be negative")
    if op == "*" and not 0 <= b <= 9:
        raise ValueError(f"columns: multiplication is by one digit, got {b}")
    if op not in "+-*":
        raise ValueError(f"columns: unknown operator {op!r}")
    ra, rb = str(a), str(b)
    carry, partial, out = 0, "", []
    while True:
        more = ra != "0" or (op != "*" and rb != "0")
        if not more and carry == 0 and out:
            break
        da = int(ra[-1])
        if op == "+":
            db = int(rb[-1])
            lhs, value = f"{da} + {db} + {carry}", da + db + carry
            digit, carry_out = value % 10, value // 10
        elif op == "-":
            db = int(rb[-1])
            borrow = 1 if da < db + carry else 0
            top = da + 10 * borrow
            lhs, value = f"{top} - {db} - {carry}", top - db - carry
            digit, carry_out = value, borrow
        else:
            lhs, value = f"{da} * {b} + {carry}", da * b + carry
            digit, carry_out = value % 10, value // 10
        partial = str(digit) + partial
        out.append(Column(a=ra, b=rb if op != "*" else str(b), lhs=lhs, value=value, digit=digit,
                          carry=carry_out, partial=partial))
        ra, carry = _rest(ra), carry_out
        if op != "*":
            rb = _rest(rb)
        if op == "-" and ra == "0" and rb == "0" and carry == 0:
            break
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    # Leading zeros of a subtraction ("so far 0610") are never produced: generators keep len(a - b) == len(a).
    assert int(partial) == result, (a, op, b, partial)
    return Procedure(a=a, op=op, b=b, columns=tuple(out), result=result)


def procedures(example: Example) -> list[Procedure]:
    """The written operations of a digit-task example, in order (one, or two for the chain)."""
    ops = example.meta.get("ops")
    if not ops:
        raise ValueError(f"{example.id}: not a digit-procedure example (no meta['ops'])")
    return [columns(int(a), op, int(b)) for a, op, b in ops]


def _steps(procs: list[Procedure]) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    for p in procs:
        steps.extend((c.lhs, str(c.value)) for c in p.columns)
        steps.append((f"{p.a} {p.op} {p.b}", str(p.result)))
    return steps


def _number(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


def _example(name: str, problem: str, ops: list[tuple[int, str, int]], difficulty: int, expression: str) -> Example:
    procs = [columns(a, op, b) for a, op, b in ops]
    steps = _steps(procs)
    answer = str(procs[-1].result)
    return Example(id=f"{name}-unassigned", task=name, problem=problem, answer=answer, solution=render_steps(steps),
                   meta={"difficulty": difficulty, "steps": steps, "expression": expression,
                         "ops": [[a, op, b] for a, op, b in ops]})


class AdditionTask:
    """``Compute A + B.`` The longer operand has ``level + 2`` digits, the other 2 or more; answer >= 1000."""

    name = "addition"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        n = check_difficulty(difficulty) + 2
        while True:
            a, b = _number(rng, n), _number(rng, rng.randint(max(2, n - 2), n))
            if rng.random() < 0.5:
                a, b = b, a
            if a + b >= MIN_ANSWER:
                return _example(self.name, f"Compute {a} + {b}.", [(a, "+", b)], difficulty, f"{a} + {b}")

    def key(self, example: Example) -> str:
        return str(example.meta["expression"])


class SubtractionTask:
    """``Compute A - B.`` with borrows. A has ``level + 3`` digits, B at least 2, A - B as many digits as A."""

    name = "subtraction"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        n = check_difficulty(difficulty) + 3
        while True:
            a, b = _number(rng, n), _number(rng, rng.randint(max(2, n - 2), n))
            if a - b >= 10 ** (n - 1):
                return _example(self.name, f"Compute {a} - {b}.", [(a, "-", b)], difficulty, f"{a} - {b}")

    def key(self, example: Example) -> str:
        return str(example.meta["expression"])


class MultiplyTask:
    """``Compute A * d.`` with a one-digit ``d`` in 2..9. A has ``level + 2`` digits; answer >= 1000."""

    name = "multiply"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        n = check_difficulty(difficulty) + 2
        while True:
            a, d = _number(rng, n), rng.randint(2, 9)
            if a * d >= MIN_ANSWER:
                return _example(self.name, f"Compute {a} * {d}.", [(a, "*", d)], difficulty, f"{a} * {d}")

    def key(self, example: Example) -> str:
        return str(example.meta["expression"])


class ChainTask:
    """``Compute A + B - C.``: an addition, then a subtraction from its result (two procedures in a row).

    A and B have ``level + 2`` digits; C is drawn so that ``A + B - C`` keeps the digit count of
    ``A + B``. Written solutions do the addition first and carry its result into the subtraction.
    """

    name = "chain"

    def sample(self, rng: random.Random, difficulty: int) -> Example:
        n = check_difficulty(difficulty) + 2
        while True:
            a, b = _number(rng, n), _number(rng, n)
            s = a + b
            c = _number(rng, rng.randint(2, n))
            if s - c >= MIN_ANSWER and len(str(s - c)) == len(str(s)):
                return _example(self.name, f"Compute {a} + {b} - {c}.", [(a, "+", b), (s, "-", c)], difficulty,
                                f"{a} + {b} - {c}")

    def key(self, example: Example) -> str:
        return str(example.meta["expression"])


DIGIT_TASKS: tuple[str, ...] = (AdditionTask.name, SubtractionTask.name, MultiplyTask.name, ChainTask.name)
"""Names of the digit-procedure tasks (their corpus styles are written column by column)."""
