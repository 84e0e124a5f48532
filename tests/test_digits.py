"""Digit-procedure tasks: the columns of the written procedure, hand-checked, and the generators' guarantees."""

from __future__ import annotations

import pytest

from r1lib.tasks import generate, verify_steps
from r1lib.tasks.digits import MIN_ANSWER, columns, procedures


def _written(proc) -> list[str]:
    return [f"{c.a} {proc.op} {c.b}: {c.lhs} = {c.value}, so far {c.partial}" for c in proc.columns]


def test_addition_columns_hand_checked():
    p = columns(386, "+", 7776)
    assert _written(p) == ["386 + 7776: 6 + 6 + 0 = 12, so far 2", "38 + 777: 8 + 7 + 1 = 16, so far 62",
                           "3 + 77: 3 + 7 + 1 = 11, so far 162", "0 + 7: 0 + 7 + 1 = 8, so far 8162"]
    assert p.result == 8162
    # A carry out of the last column is a column of its own.
    assert _written(columns(999, "+", 1))[-1] == "0 + 0: 0 + 0 + 1 = 1, so far 1000"


def test_subtraction_borrows_hand_checked():
    p = columns(5032, "-", 1478)
    assert [(c.lhs, c.value, c.carry) for c in p.columns] == [
        ("12 - 8 - 0", 4, 1), ("13 - 7 - 1", 5, 1), ("10 - 4 - 1", 5, 1), ("5 - 1 - 1", 3, 0)]
    assert p.columns[-1].partial == "3554" == str(p.result)


def test_multiplication_by_one_digit_hand_checked():
    p = columns(3867, "*", 6)
    assert [(c.a, c.lhs, c.value) for c in p.columns] == [
        ("3867", "7 * 6 + 0", 42), ("386", "6 * 6 + 4", 40), ("38", "8 * 6 + 4", 52), ("3", "3 * 6 + 5", 23),
        ("0", "0 * 6 + 2", 2)]
    assert p.result == 23202 and p.columns[-1].partial == "23202"
    assert len(columns(1111, "*", 2).columns) == 4          # no final carry, no extra column


@pytest.mark.parametrize("a, op, b", [(-1, "+", 2), (3, "-", 5), (12, "*", 10), (1, "/", 1)])
def test_bad_operations_are_refused(a, op, b):
    with pytest.raises(ValueError):
        columns(a, op, b)


@pytest.mark.parametrize("task", ["addition", "subtraction", "multiply", "chain"])
def test_generated_problems(task):
    for level in (1, 2, 3):
        examples = generate(task, 200, seed=1, difficulty=level)
        for ex in examples:
            assert verify_steps(ex) == []
            assert int(ex.answer) >= MIN_ANSWER            # cannot be guessed
            assert str(procedures(ex)[-1].result) == ex.answer
        longest = max(max(len(str(a)), len(str(b))) for ex in examples for a, _, b in ex.meta["ops"][:1])
        assert longest == level + (3 if task == "subtraction" else 2)


def test_chain_is_two_procedures():
    ex = generate("chain", 1, seed=0, difficulty=1)[0]
    add, sub = procedures(ex)
    assert add.op == "+" and sub.op == "-" and sub.a == add.result
    assert ex.problem == f"Compute {add.a} + {add.b} - {sub.b}."


def test_harder_split_is_one_digit_more():
    from r1lib.config import TasksConfig

    cfg = TasksConfig(mix={"addition": 1.0}, difficulty=(1, 2), n_train=10, n_test=10, n_harder=8)
    assert cfg.harder_difficulty() == (3, 3)
    assert TasksConfig(mix={"addition": 1.0}, difficulty=(1, 5), n_train=1, n_test=1, n_harder=8).harder_difficulty() is None
    assert TasksConfig(mix={"addition": 1.0}, n_train=1, n_test=1).harder_difficulty() is None   # n_harder = 0: off
    train_len = {len(str(a)) for ex in generate("addition", 300, seed=0, difficulty=(1, 2)) for a, _, b in ex.meta["ops"]}
    harder_len = {max(len(str(a)), len(str(b))) for ex in generate("addition", 50, split="test", seed=0, difficulty=3)
                  for a, _, b in ex.meta["ops"]}
    assert max(train_len) == 4 and harder_len == {5}
