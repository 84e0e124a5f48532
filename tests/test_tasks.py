"""Tests for the safe expression evaluator, check_countdown and the procedural task generators."""

from __future__ import annotations

import re
from fractions import Fraction
from statistics import mean

import pytest

from r1lib.tasks import (TASKS, Example, ExpressionError, check_countdown, evaluate_expression, generate,
                         generate_mix, numbers_used, split_of, verify_steps)
from r1lib.tasks import expr as expr_mod

NUMBER = re.compile(r"-?\d+")
COUNTDOWN_TEXT = re.compile(r"Using the numbers \[(\d+(?:, \d+)*)\], create an equation that equals (\d+)\. "
                            r"You can use basic arithmetic operations \(\+, -, \*, /\) and each number can only "
                            r"be used once\.")


# --- expression evaluator -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("(12 + 7) * 3 - 5", Fraction(52)),
    ("2 + 3 * 4", Fraction(14)),
    ("2 - 3 - 4", Fraction(-5)),          # left associative
    ("64 / 4 / 2", Fraction(8)),          # left associative
    ("1/3*3", Fraction(1)),               # exact, no float rounding
    ("7/2", Fraction(7, 2)),
    ("2.5 * 2", Fraction(5)),
    ("0.1 + 0.2", Fraction(3, 10)),
    ("-3 + 5", Fraction(2)),
    ("3 - (-7)", Fraction(10)),
    ("--4", Fraction(4)),
    ("44+19+35 = 98", Fraction(98)),      # only the part before '=' is evaluated
    ("44+19+35 = 12", Fraction(98)),      # ... whatever the claimed result
    ("6 × 7 ÷ 2", Fraction(21)),
    ("10 − 4", Fraction(6)),              # unicode minus
    ("  ( ( 5 ) )  ", Fraction(5)),
    ("007 + 1", Fraction(8)),
])
def test_evaluate_values(text: str, value: Fraction) -> None:
    assert evaluate_expression(text) == value


@pytest.mark.parametrize("text, message", [
    ("9**9**9**9", "expected a number"),
    ("2^3", "unexpected character '\\^'"),
    ("__import__('os')", "unexpected character '_'"),
    ("1" * 100_000, "longer than 200"),
    ("(" * 40 + "1" + ")" * 40, "nesting deeper"),
    ("-" * 100 + "1", "nesting deeper"),
    ("1/0", "division by zero"),
    ("5 / (2 - 2)", "division by zero"),
    ("", "empty expression"),
    ("   = 5", "empty expression"),
    ("2 +", "end of input"),
    ("(1 + 2", "expected '\\)'"),
    ("1 + 2)", "unexpected '\\)'"),
    ("1 2", "unexpected '2'"),
    ("1.", "malformed number"),
    ("1..2", "malformed number"),
    ("1e5", "unexpected character 'e'"),
    ("5 % 2", "unexpected character '%'"),
    ("abs(1)", "unexpected character 'a'"),
    ("3²", "unexpected character '²'"),
    ("٣ + 1", "unexpected character"),     # Arabic-Indic digit
    ("２ + 1", "unexpected character"),    # full-width digit
    ("1234567890123456789", "more than 18 digits"),
    ("*".join(["99999999"] * 10), "too large"),
])
def test_evaluate_rejects(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate_expression(text)


def test_evaluate_rejects_non_string() -> None:
    with pytest.raises(ExpressionError, match="must be a str"):
        evaluate_expression(None)  # type: ignore[arg-type]


def test_depth_limit_boundary() -> None:
    ok = "(" * expr_mod.MAX_DEPTH + "1" + ")" * expr_mod.MAX_DEPTH
    assert evaluate_expression(ok) == 1
    with pytest.raises(ExpressionError):
        evaluate_expression("(" + ok + ")")


def test_numbers_used() -> None:
    assert numbers_used("(44 + 19) - 35 = 28") == [44, 19, 35]
    assert numbers_used("-3+5") == [3, 5]
    assert numbers_used("7") == [7]
    with pytest.raises(ExpressionError, match="non-integer literal"):
        numbers_used("2.5 + 1")
    with pytest.raises(ExpressionError):
        numbers_used("1 +")


# --- check_countdown ----------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, nums, target, expected", [
    ("44 + 19 + 35", [44, 19, 35], 98, True),
    ("35 + 44 + 19", [44, 19, 35], 98, True),
    ("44+19+35 = 98", [44, 19, 35], 98, True),
    ("44+19+35 = 97", [44, 19, 35], 98, False),       # a wrong claimed result is rejected
    ("44 + 19 + 35", [44, 19, 35], 97, False),        # wrong value
    ("44 + 54", [44, 19, 35], 98, False),             # uses a number not given
    ("44 + 19", [44, 19, 35], 63, False),             # 35 unused
    ("44 + 44 + 10", [44, 10], 98, False),            # 44 used twice
    ("(44 + 44) + 10", [44, 44, 10], 98, True),       # duplicates are a multiset
    ("5 * (5 - 1 / 5)", [1, 5, 5, 5], 24, True),      # fractional intermediate, exact
    ("8 / 4 * 3", [3, 4, 8], 6, True),
    ("-(3 - 8) * 4", [3, 8, 4], 20, True),
    ("3 / (8 - 8)", [3, 8, 8], 0, False),             # division by zero
    ("9**9**9**9", [9, 9, 9, 9], 1, False),
    ("__import__('os').system('true')", [1], 1, False),
    ("1 + " * 30_000 + "1", [1], 1, False),           # 120k characters
    ("(" * 100 + "1" + ")" * 100, [1], 1, False),
    ("44 × 2 + 10", [44, 2, 10], 98, True),
    ("4.0 * 2", [4, 2], 8, False),                    # decimal literals are not the given integers
    ("", [1], 1, False),
])
def test_check_countdown(expr: str, nums: list[int], target: int, expected: bool) -> None:
    assert check_countdown(expr, nums, target) is expected


@pytest.mark.parametrize("expr, nums, target", [
    (None, [1, 2], 3), (123, [1, 2], 3), ("1 + 2", None, 3), ("1 + 2", ["a"], 3),
    ("1 + 2", [1, 2], "3"), ("1 + 2", [1, 2], None), (b"1 + 2", [1, 2], 3),
])
def test_check_countdown_never_raises(expr: object, nums: object, target: object) -> None:
    assert check_countdown(expr, nums, target) is False  # type: ignore[arg-type]


# --- generators ---------------------------------------------------------------------------------------

ALL_TASKS = sorted(TASKS)
STEP_TASKS = [t for t in ALL_TASKS if t != "general"]   # "general" is non-reasoning: no steps


def test_registry_names() -> None:
    assert ALL_TASKS == ["addition", "arithmetic", "chain", "countdown", "general", "linear", "multiply",
                         "subtraction", "word"]
    for name, cls in TASKS.items():
        assert cls.name == name


@pytest.mark.parametrize("task", ALL_TASKS)
def test_deterministic_and_seed_dependent(task: str) -> None:
    a = [e.to_dict() for e in generate(task, 40, seed=7, difficulty=(1, 5))]
    b = [e.to_dict() for e in generate(task, 40, seed=7, difficulty=(1, 5))]
    c = [e.to_dict() for e in generate(task, 40, seed=8, difficulty=(1, 5))]
    assert a == b
    assert [e["problem"] for e in a] != [e["problem"] for e in c]
    # A shorter request is a prefix of a longer one.
    assert [e.to_dict() for e in generate(task, 10, seed=7, difficulty=(1, 5))] == a[:10]


@pytest.mark.parametrize("task", ALL_TASKS)
def test_train_test_disjoint_and_unique(task: str) -> None:
    train = generate(task, 1000, split="train", seed=0)
    test = generate(task, 1000, split="test", seed=1)
    train_text, test_text = {e.problem for e in train}, {e.problem for e in test}
    assert len(train_text) == 1000 and len(test_text) == 1000      # no duplicates within a list
    assert not train_text & test_text
    generator = TASKS[task]()
    assert all(split_of(task, generator.key(e)) == "train" for e in train)
    assert all(split_of(task, generator.key(e)) == "test" for e in test)
    assert {e.meta["split"] for e in train} == {"train"} and {e.meta["split"] for e in test} == {"test"}


def test_split_fraction_is_about_ten_percent() -> None:
    share = sum(split_of("arithmetic", str(i)) == "test" for i in range(20_000)) / 20_000
    assert 0.09 < share < 0.11


def test_ids() -> None:
    examples = generate("arithmetic", 13, seed=0)
    assert examples[12].id == "arithmetic-train-s0-000012"
    assert generate("countdown", 1, split="test", seed=3)[0].id == "countdown-test-s3-000000"


def _check_steps_independently(example: Example) -> None:
    steps = example.meta["steps"]
    assert steps, example
    for lhs, rhs in steps:
        assert NUMBER.fullmatch(rhs), (lhs, rhs)
        arithmetic = lhs.rsplit("=", 1)[-1]
        assert evaluate_expression(arithmetic) == Fraction(int(rhs)), (example.problem, lhs, rhs)
    assert steps[-1][1] == example.answer
    assert example.solution == "\n".join(f"{lhs} = {rhs}" for lhs, rhs in steps)


@pytest.mark.parametrize("task", STEP_TASKS)
def test_steps_consistent(task: str) -> None:
    for example in generate(task, 300, seed=2, difficulty=(1, 5)):
        assert example.task == task
        assert 1 <= example.meta["difficulty"] <= 5
        assert NUMBER.fullmatch(example.answer)
        _check_steps_independently(example)
        assert verify_steps(example) == []


def test_verify_steps_detects_a_slip() -> None:
    example = generate("arithmetic", 1, seed=0)[0]
    lhs, rhs = example.meta["steps"][0]
    example.meta["steps"][0] = (lhs, str(int(rhs) + 1))
    assert any("step 0" in problem for problem in verify_steps(example))


def test_arithmetic_expression_matches_answer() -> None:
    for example in generate("arithmetic", 200, seed=4, difficulty=(1, 5)):
        assert example.problem == f"Compute {example.meta['expression']}."
        assert evaluate_expression(example.meta["expression"]) == int(example.answer)
        assert len(example.meta["steps"]) == example.meta["difficulty"] + 1   # 2..6 operations


def _substitute(side: str, x: int) -> str:
    side = re.sub(r"(\d)\(", r"\1*(", side)        # 3(x + 4) -> 3*(x + 4)
    side = re.sub(r"(\d)x", r"\1*x", side)         # 3x -> 3*x
    return side.replace("x", f"({x})")


def test_linear_solution_satisfies_equation() -> None:
    for example in generate("linear", 300, seed=5, difficulty=(1, 5)):
        equation = example.meta["equation"]
        assert example.problem == f"Solve for x: {equation}."
        left, right = equation.split(" = ")
        x = int(example.answer)
        assert evaluate_expression(_substitute(left, x)) == evaluate_expression(_substitute(right, x)), equation
        assert evaluate_expression(_substitute(left, x + 1)) != evaluate_expression(_substitute(right, x + 1))


def test_linear_hand_checked_rendering() -> None:
    assert _substitute("3(x - 4) - 5", 7) == "3*((7) - 4) - 5"
    assert evaluate_expression(_substitute("3(x - 4) - 5", 7)) == 4


def test_countdown_generated_problems_are_solvable() -> None:
    for example in generate("countdown", 300, seed=6, difficulty=(1, 5)):
        meta = example.meta
        match = COUNTDOWN_TEXT.fullmatch(example.problem)
        assert match, example.problem
        assert [int(n) for n in match[1].split(", ")] == meta["nums"] and int(match[2]) == meta["target"]
        assert example.answer == str(meta["target"])
        assert 1 <= meta["target"] <= 100
        assert len(meta["nums"]) == (3 if meta["difficulty"] <= 2 else 4)
        assert len(meta["steps"]) == len(meta["nums"]) - 1
        assert check_countdown(meta["solution_expr"], meta["nums"], meta["target"])
        assert not check_countdown(meta["solution_expr"], meta["nums"], meta["target"] + 1)


def test_word_templates_all_used() -> None:
    templates = {e.meta["template"] for e in generate("word", 200, seed=0, difficulty=(1, 5))}
    assert templates == {"shopping", "sharing", "ages", "rates", "savings"}


@pytest.mark.parametrize("task", STEP_TASKS)
def test_difficulty_raises_step_count(task: str) -> None:
    means = [mean(len(e.meta["steps"]) for e in generate(task, 60, seed=3, difficulty=level))
             for level in range(1, 6)]
    assert all(a <= b for a, b in zip(means, means[1:])), means
    assert means[0] < means[-1], means
    assert all(e.meta["difficulty"] == 4 for e in generate(task, 20, seed=3, difficulty=4))


def test_word_step_counts_exact() -> None:
    for level, steps in [(1, 1), (2, 2), (3, 3), (4, 4), (5, 4)]:
        assert {len(e.meta["steps"]) for e in generate("word", 30, seed=0, difficulty=level)} == {steps}
    # Level 5 has the step count of level 4 but larger numbers.
    def mean_largest(level: int) -> float:
        return mean(max(map(int, NUMBER.findall(e.problem))) for e in generate("word", 100, seed=0, difficulty=level))
    assert mean_largest(5) > 1.3 * mean_largest(4)


def test_generate_mix() -> None:
    mix = generate_mix({"arithmetic": 1, "word": 3}, 8, seed=0)
    assert sorted(e.task for e in mix) == ["arithmetic"] * 2 + ["word"] * 6
    again = generate_mix({"word": 3.0, "arithmetic": 1.0}, 8, seed=0)   # key order does not matter
    assert [e.to_dict() for e in mix] == [e.to_dict() for e in again]
    big = generate_mix({"arithmetic": 0.25, "linear": 0.25, "countdown": 0.25, "word": 0.25}, 40, seed=1)
    tasks = [e.task for e in big]
    four = ["arithmetic", "countdown", "linear", "word"]
    assert {t: tasks.count(t) for t in four} == {t: 10 for t in four}
    assert tasks != sorted(tasks)                      # interleaved, not grouped by task
    assert len({e.id for e in big}) == 40
    # Largest remainder: 10 * (1/3, 1/3, 1/3) -> 4, 3, 3 with ties broken by name.
    thirds = generate_mix({"word": 1, "linear": 1, "arithmetic": 1}, 10, seed=0)
    assert sorted(e.task for e in thirds).count("arithmetic") == 4
    assert generate_mix({"arithmetic": 1, "word": 0}, 5, seed=0)[0].task == "arithmetic"


@pytest.mark.parametrize("kwargs, error", [
    ({"task": "nope", "n": 1}, KeyError),
    ({"task": "arithmetic", "n": -1}, ValueError),
    ({"task": "arithmetic", "n": 1, "split": "val"}, ValueError),
    ({"task": "arithmetic", "n": 1, "difficulty": 0}, ValueError),
    ({"task": "arithmetic", "n": 1, "difficulty": 6}, ValueError),
    ({"task": "arithmetic", "n": 1, "difficulty": (3, 1)}, ValueError),
    ({"task": "arithmetic", "n": 1, "difficulty": 2.0}, ValueError),
])
def test_generate_bad_arguments(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        generate(**kwargs)


@pytest.mark.parametrize("mix", [{}, {"nope": 1.0}, {"arithmetic": -1.0}, {"arithmetic": 0.0}])
def test_generate_mix_bad_arguments(mix: dict) -> None:
    with pytest.raises((KeyError, ValueError)):
        generate_mix(mix, 4)


def test_generate_zero() -> None:
    assert generate("word", 0) == []


class _TinyTask:
    """A task with only 50 distinct problems, to exercise exhaustion and the split rule."""

    name = "tiny"

    def sample(self, rng, difficulty: int) -> Example:  # noqa: ANN001
        a = rng.randint(1, 50)
        return Example(id="tiny", task="tiny", problem=f"Compute {a} + 0.", answer=str(a),
                       meta={"difficulty": difficulty, "steps": [(f"{a} + 0", str(a))]})

    def key(self, example: Example) -> str:
        return example.problem


def test_exhausted_space_raises_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS, "tiny", _TinyTask)
    n_test = sum(split_of("tiny", f"Compute {a} + 0.") == "test" for a in range(1, 51))
    assert 0 < n_test < 50
    test = generate("tiny", n_test, split="test")           # every test problem, each once
    assert sorted(int(e.answer) for e in test) == sorted(
        a for a in range(1, 51) if split_of("tiny", f"Compute {a} + 0.") == "test")
    with pytest.raises(RuntimeError, match=f"found only {n_test} of {n_test + 1} distinct test problems"):
        generate("tiny", n_test + 1, split="test")
