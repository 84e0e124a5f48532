"""Agreement of r1lib's grader with the benchmark references (the files shipped in r1lib/data/benchmarks).

- MATH-500: the last ``\\boxed{}`` of each reference solution must be judged equal to the reference
  answer (all 500), also through the math-verify path alone (no string fast path); a perturbed
  wrong answer (``gold + "+1"``, and gold with its first digit changed) must mostly be judged unequal.
- GSM8K test: a correct completion with thousands separators scores 1.0, the answer + 1 scores 0.0.

Counts are printed and repeated in every assertion message.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from r1lib import grading
from r1lib.grading import is_equivalent, last_boxed
from r1lib.rewards import accuracy_reward
from r1lib.tasks.benchmarks import SHIPPED_DATA_DIR
from r1lib.tasks.base import Example


def _rows(name: str) -> list[dict]:
    """The raw rows of a shipped file (``r1lib.tasks.benchmarks.SHIPPED_DATA_DIR``)."""
    path = SHIPPED_DATA_DIR / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def math500() -> list[dict]:
    rows = _rows("math500/test.jsonl")
    assert len(rows) == 500
    return rows


@pytest.fixture(scope="module")
def gsm8k_test() -> list[dict]:
    rows = _rows("gsm8k/test.jsonl")
    assert len(rows) == 1319
    return rows


def test_math500_reference_boxed_matches_answer(math500):
    start = time.perf_counter()
    failures = [(r["id"], last_boxed(r["solution"]), r["answer"]) for r in math500
                if not is_equivalent(last_boxed(r["solution"]), r["answer"])]
    msg = (f"MATH-500 positives: {500 - len(failures)}/500 agree "
           f"({time.perf_counter() - start:.1f} s); failures: {failures[:20]}")
    print(msg)
    assert not failures, msg


def test_math500_math_verify_path_alone(math500):
    """The same 500 pairs through math-verify only (skipping the exact fast path)."""
    start = time.perf_counter()
    failures = [(r["id"], r["answer"]) for r in math500
                if not grading._guarded_mv(last_boxed(r["solution"]), r["answer"], grading.DEFAULT_BUDGET_S)]
    agree = 500 - len(failures)
    msg = (f"MATH-500 positives via math-verify alone: {agree}/500 = {agree / 5:.1f}% "
           f"({time.perf_counter() - start:.1f} s); failures: {failures[:20]}")
    print(msg)
    assert agree >= 490, msg


def _bump_first_digit(ans: str) -> str | None:
    """``"\\frac{14}{3}" -> "\\frac{24}{3}"``, ``"52_8" -> "62_8"``; ``None`` when there is no digit.

    The first digit, not the last: the last is often a base subscript or a unit exponent, which
    math-verify ignores (``52_8`` -> ``52``), so changing it would not change the value.
    """
    m = re.search(r"\d", ans)
    if m is None:
        return None
    return ans[:m.start()] + str((int(m.group()) + 1) % 10) + ans[m.end():]


def test_math500_perturbed_answers_are_rejected(math500):
    start = time.perf_counter()
    plus_one_wrong = [r["answer"] for r in math500 if is_equivalent(r["answer"] + "+1", r["answer"])]
    bumped = [(r["answer"], b) for r in math500 if (b := _bump_first_digit(r["answer"])) is not None]
    bumped_wrong = [(a, b) for a, b in bumped if is_equivalent(b, a)]
    n_plus, n_bump = 500, len(bumped)
    agree_plus = (n_plus - len(plus_one_wrong)) / n_plus
    agree_bump = (n_bump - len(bumped_wrong)) / n_bump
    msg = (f"MATH-500 negatives: gold+'+1' judged unequal {n_plus - len(plus_one_wrong)}/{n_plus} "
           f"({agree_plus:.1%}); first digit changed judged unequal {n_bump - len(bumped_wrong)}/{n_bump} "
           f"({agree_bump:.1%}); {time.perf_counter() - start:.1f} s; "
           f"false 'equal': {plus_one_wrong[:10]} {bumped_wrong[:10]}")
    print(msg)
    assert agree_plus >= 0.95 and agree_bump >= 0.95, msg


def test_gsm8k_accuracy_reward_with_thousands_separators(gsm8k_test):
    start = time.perf_counter()
    right_missed, wrong_accepted, with_commas = [], [], 0
    for r in gsm8k_test:
        value = int(r["answer"])
        ex = Example(id=r["id"], task="gsm8k", problem=r["problem"], answer=r["answer"])
        shown = f"{value:,}"
        with_commas += "," in shown
        if accuracy_reward(f"<think>...</think> <answer>{shown}</answer>", ex) != 1.0:
            right_missed.append((r["id"], shown))
        if accuracy_reward(f"<think>...</think> <answer>{value + 1:,}</answer>", ex) != 0.0:
            wrong_accepted.append((r["id"], value + 1))
    msg = (f"GSM8K test: correct 1,234-style answers scored 1.0 in {1319 - len(right_missed)}/1319 "
           f"({with_commas} with separators), answer+1 scored 0.0 in {1319 - len(wrong_accepted)}/1319 "
           f"({time.perf_counter() - start:.1f} s); misses {right_missed[:10]}, false accepts {wrong_accepted[:10]}")
    print(msg)
    assert not right_missed and not wrong_accepted, msg
    assert with_commas > 100, msg
