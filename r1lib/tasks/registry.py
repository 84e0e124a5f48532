"""Registry of procedural tasks, and seeded generation with train/test splits disjoint by construction.

Split assignment: each problem has a canonical key (``task.key(example)``: the expression, the
equation, the problem text, or for Countdown the sorted numbers and the target). The key, prefixed
with the task name, is hashed with SHA-256; the first 8 bytes read as a fraction of 2**64 put the
problem in "test" when below :data:`TEST_FRACTION`, else in "train". :func:`generate`
rejection-samples until a drawn problem falls in the requested split, so no problem can ever appear
in both splits, whatever the seeds. Within one generated list, keys are unique too.

Step convention: ``meta["steps"]`` is a list of ``(lhs, rhs)`` string pairs, rendered ``"lhs = rhs"``;
``rhs`` is a number string and the text after the last ``=`` of ``lhs`` (or all of it) is the
arithmetic that produces it: see :func:`step_expression` and :func:`verify_steps`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from fractions import Fraction
from typing import Protocol

from r1lib.tasks.arithmetic import ArithmeticTask
from r1lib.tasks.base import Example
from r1lib.tasks.countdown import CountdownTask, check_countdown
from r1lib.tasks.digits import AdditionTask, ChainTask, MultiplyTask, SubtractionTask
from r1lib.tasks.general import GeneralTask, check_general
from r1lib.tasks.expr import ExpressionError, check_difficulty, evaluate
from r1lib.tasks.linear import LinearTask
from r1lib.tasks.word_problems import WordProblemTask

TEST_FRACTION = 0.1
"""Share of each task's key space that belongs to the "test" split."""
SPLITS = ("train", "test")
MAX_CONSECUTIVE_MISSES = 5000
"""generate() gives up after this many draws in a row without a new problem of the requested split
(with 10% test, 5000 misses in a row by chance has probability 0.9**5000 ~ 1e-229): the level
range is then (nearly) exhausted."""


class Task(Protocol):
    """What every procedural task provides."""

    name: str

    def sample(self, rng: random.Random, difficulty: int) -> Example: ...

    def key(self, example: Example) -> str: ...


TASKS: dict[str, type] = {
    ArithmeticTask.name: ArithmeticTask,
    LinearTask.name: LinearTask,
    CountdownTask.name: CountdownTask,
    WordProblemTask.name: WordProblemTask,
    AdditionTask.name: AdditionTask,
    SubtractionTask.name: SubtractionTask,
    MultiplyTask.name: MultiplyTask,
    ChainTask.name: ChainTask,
    GeneralTask.name: GeneralTask,
}


def _stable_int(*parts: object) -> int:
    """A 64-bit integer from SHA-256 of the parts (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def split_of(task: str, key: str) -> str:
    """The split ("train" or "test") that the problem with canonical ``key`` belongs to."""
    return "test" if _stable_int("r1lib-split", task, key) < TEST_FRACTION * 2**64 else "train"


def _difficulty_range(difficulty: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(difficulty, (tuple, list)):  # a list too: YAML/JSON configs give lists
        if len(difficulty) != 2:
            raise ValueError(f"difficulty range must be (low, high), got {difficulty!r}")
        lo, hi = check_difficulty(difficulty[0]), check_difficulty(difficulty[1])
        if lo > hi:
            raise ValueError(f"difficulty range low > high: {difficulty!r}")
        return lo, hi
    level = check_difficulty(difficulty)
    return level, level


def _check_common(n: int, split: str, seed: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")


def generate(task: str, n: int, *, split: str = "train", seed: int = 0,
             difficulty: int | tuple[int, int] = (1, 3)) -> list[Example]:
    """Generate ``n`` distinct problems of ``task`` from ``split``, deterministically from ``seed``.

    ``difficulty`` is a level (1..5) or an inclusive ``(low, high)`` range drawn uniformly per
    problem. Every returned problem passes :func:`verify_steps` (its steps re-evaluate exactly with
    the safe evaluator, and Countdown's ``solution_expr`` solves it). The list for ``n`` is a
    prefix of the list for any larger ``n`` (same other arguments).
    Ids look like ``"arithmetic-train-s0-000012"``; ``meta["split"]`` records the split.

    Raises ``KeyError`` for an unknown task, ``ValueError`` for bad arguments, and ``RuntimeError``
    when the level range has too few distinct problems in that split for ``n`` (roughly, level 1
    alone holds about 8k-16k distinct train problems per task; ranges and higher levels far more).
    """
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; known tasks: {sorted(TASKS)}")
    _check_common(n, split, seed)
    lo, hi = _difficulty_range(difficulty)
    generator: Task = TASKS[task]()
    rng = random.Random(_stable_int("r1lib-generate", task, split, seed))
    out: list[Example] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < n:
        example = generator.sample(rng, rng.randint(lo, hi))
        key = generator.key(example)
        if key in seen or split_of(task, key) != split:
            misses += 1
            if misses > MAX_CONSECUTIVE_MISSES:
                raise RuntimeError(f"generate({task!r}): found only {len(out)} of {n} distinct {split} problems "
                                   f"at difficulty {lo}..{hi} ({MAX_CONSECUTIVE_MISSES} draws in a row were "
                                   f"duplicates or in the other split); ask for fewer or widen the range")
            continue
        misses = 0
        seen.add(key)
        problems = verify_steps(example)
        if problems:  # a generator bug, never expected: every emitted problem is self-checked
            raise RuntimeError(f"generate({task!r}) produced an inconsistent problem: {problems}")
        out.append(replace(example, id=f"{task}-{split}-s{seed}-{len(out):06d}",
                           meta={**example.meta, "split": split}))
    return out


def _allocate(weights: dict[str, float], n: int) -> dict[str, int]:
    """Largest-remainder apportionment of ``n`` items by normalised weights (ties: by name)."""
    total = sum(weights.values())
    quotas = {name: n * w / total for name, w in weights.items()}
    counts = {name: int(q) for name, q in quotas.items()}
    rest = n - sum(counts.values())
    for name in sorted(quotas, key=lambda k: (-(quotas[k] - counts[k]), k))[:rest]:
        counts[name] += 1
    return counts


def generate_mix(mix: dict[str, float], n: int, *, split: str = "train", seed: int = 0,
                 difficulty: int | tuple[int, int] = (1, 3)) -> list[Example]:
    """``n`` problems drawn from several tasks in the proportions ``mix`` (normalised to sum 1).

    Each task contributes ``generate(task, count, split=split, seed=seed, difficulty=difficulty)``
    with counts from largest-remainder rounding; the union is shuffled with a seed-derived RNG.
    The result does not depend on the order of the keys in ``mix``.
    """
    if not mix:
        raise ValueError("mix must name at least one task")
    for name, weight in mix.items():
        if name not in TASKS:
            raise KeyError(f"unknown task {name!r} in mix; known tasks: {sorted(TASKS)}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"mix weight for {name!r} must be a number >= 0, got {weight!r}")
    if sum(mix.values()) <= 0:
        raise ValueError(f"mix weights must not all be zero: {mix!r}")
    _check_common(n, split, seed)
    counts = _allocate(dict(sorted(mix.items())), n)
    out: list[Example] = []
    for name, count in counts.items():
        out.extend(generate(name, count, split=split, seed=seed, difficulty=difficulty))
    random.Random(_stable_int("r1lib-mix", split, seed)).shuffle(out)
    return out


def step_expression(lhs: str) -> str:
    """The arithmetic part of a step's ``lhs``: the text after its last ``=`` (or all of it).

    >>> step_expression("3x = 15, so x = 15 / 3")
    ' 15 / 3'
    """
    return lhs.rsplit("=", 1)[-1]


def verify_steps(example: Example) -> list[str]:
    """Problems with ``meta["steps"]`` (empty list when every step checks out).

    Each step's arithmetic (:func:`step_expression`) must evaluate exactly to its ``rhs``, and the
    last ``rhs`` must equal ``example.answer``; a ``meta["expression"]`` (arithmetic) must evaluate
    to the answer. For Countdown, ``meta["solution_expr"]`` must also
    pass :func:`check_countdown`. Useful to detect planted slips (a perturbed ``rhs``).
    """
    if example.task == GeneralTask.name:  # non-reasoning: no steps; the reference must pass its own checker
        return [] if check_general(example.answer, example) == 1.0 else [f"{example.id}: reference fails check_general"]
    steps = example.meta.get("steps")
    if not steps:
        return [f"{example.id}: no steps"]
    problems = []
    for i, (lhs, rhs) in enumerate(steps):
        try:
            if evaluate(step_expression(lhs)) != Fraction(rhs):
                problems.append(f"{example.id}: step {i}: {lhs} = {rhs} is wrong")
        except (ExpressionError, ValueError) as err:
            problems.append(f"{example.id}: step {i}: cannot evaluate {lhs!r} / {rhs!r}: {err}")
    if steps[-1][1] != example.answer:
        problems.append(f"{example.id}: last step gives {steps[-1][1]!r}, answer is {example.answer!r}")
    expression = example.meta.get("expression")
    if expression is not None:
        try:
            if evaluate(expression) != Fraction(example.answer):
                problems.append(f"{example.id}: expression {expression!r} does not give the answer")
        except (ExpressionError, ValueError) as err:
            problems.append(f"{example.id}: cannot evaluate expression {expression!r}: {err}")
    if example.task == "countdown" and not check_countdown(
            example.meta.get("solution_expr", ""), example.meta.get("nums", []), example.meta.get("target")):
        problems.append(f"{example.id}: solution_expr does not solve the countdown problem")
    return problems
