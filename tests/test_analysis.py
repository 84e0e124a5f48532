"""r1lib.analysis: equations, aha moments, the R1-Zero report."""

from __future__ import annotations

import pandas as pd
import pytest

from r1lib.analysis import aha_examples, aha_rate_by_step, completions_at, equations, find_aha, r1_zero_report


def test_equations_found_and_checked():
    text = "First, we need to solve: 3 + 4 * 2. 4 * 2 = 9. Wait, let me check: 4 * 2 = 8, not 9. 3 + 8 = 11."
    eqs = equations(text)
    assert [(e["lhs"], e["rhs"], e["correct"]) for e in eqs] == [("4 * 2", "9", False), ("4 * 2", "8", True),
                                                                  ("3 + 8", "11", True)]
    # labelled and variable equations are skipped; a word ends the left side
    assert [(e["lhs"], e["correct"]) for e in equations("cost of the candles = 4 * 7 = 28. x = 5")] == [("4 * 7", True)]
    assert [(e["lhs"], e["correct"]) for e in equations("x = 120 / (-10) = -12")] == [("120 / (-10)", True)]


def test_find_aha_requires_a_fix_after_the_reflection_word():
    assert find_aha("4 * 2 = 9. Wait, let me check: 4 * 2 = 8.") == {"word": "wait", "wrong": "4 * 2 = 9",
                                                                    "fixed": "4 * 2 = 8"}
    assert find_aha("4 * 2 = 8. Wait, let me check: 4 * 2 = 8.") is None      # nothing was wrong
    assert find_aha("4 * 2 = 9. 4 * 2 = 8.") is None                           # no reflection word
    assert find_aha("Wait. 4 * 2 = 9, 4 * 2 = 8") is None                      # the error comes after the word
    assert find_aha("10 / 4 = 4. Hmm, wrong. Let me verify: 10 / 5 = 2") is None  # a different step


def test_aha_examples_and_rates():
    samples = {0: [{"id": "a", "gold": "8", "completions": ["4 * 2 = 9. Wait: 4 * 2 = 8", "8"],
                    "correct": [True, True]}],
               5: [{"id": "a", "gold": "8", "completions": ["4 * 2 = 9. Wait: 4 * 2 = 8", "4 * 2 = 9. Wait: 4 * 2 = 8"],
                    "correct": [False, True]}]}
    found = aha_examples(samples, {"a": "Compute 4 * 2."})
    assert [(f["step"], f["problem"], f["word"]) for f in found] == [(0, "Compute 4 * 2.", "wait"),
                                                                    (5, "Compute 4 * 2.", "wait")]
    assert aha_rate_by_step(samples) == {0: 0.5, 5: 0.5}
    assert completions_at(samples, 5, n=1) == [{"id": "a", "gold": "8", "completion": samples[5][0]["completions"][0],
                                                "correct": False}]


def test_r1_zero_report_uses_first_and_last_eval():
    df = pd.DataFrame([
        {"step": 0, "eval/pass@1": 0.05, "eval/cons@8": 0.1, "eval/mean_length": 40.0, "eval/reflection_rate": 0.02,
         "eval/format_rate": 0.6},
        {"step": 1, "reward/mean": 0.5},
        {"step": 10, "eval/pass@1": 0.60, "eval/cons@8": 0.7, "eval/mean_length": 85.0, "eval/reflection_rate": 0.07,
         "eval/format_rate": 0.97},
    ])
    rep = r1_zero_report(df, k=8, steps=10, train_seconds=12.5)
    assert rep["base_pass_at_1"] == 0.05 and rep["final_pass_at_1"] == 0.60 and rep["final_cons_at_k"] == 0.7
    assert rep["eval_steps"] == [0, 10] and rep["k"] == 8 and rep["steps"] == 10
    # +55 points, format 97%, cons 0.7 >= 0.6, length 85 >= 2 x 40, reflection 0.07 >= 3 x 0.02
    assert rep["targets"] == {"pass_at_1_gain_ge_50_points": True, "format_rate_ge_95": True,
                              "cons_at_k_ge_pass_at_1": True, "mean_length_ge_2x": True, "reflection_rate_ge_3x": True}
    for key in ("base_pass_at_1", "final_pass_at_1", "final_cons_at_k", "k", "base_mean_length", "final_mean_length",
                "base_reflection_rate", "final_reflection_rate", "final_format_rate", "steps", "train_seconds"):
        assert key in rep
    worse = df.copy()
    worse.loc[2, ["eval/pass@1", "eval/mean_length", "eval/reflection_rate"]] = [0.5, 79.0, 0.059]
    assert not any(r1_zero_report(worse, k=8, steps=10, train_seconds=1.0)["targets"][t] for t in
                   ("pass_at_1_gain_ge_50_points", "mean_length_ge_2x", "reflection_rate_ge_3x"))
    with pytest.raises(KeyError):
        r1_zero_report(df.drop(columns=["eval/cons@8"]), k=8, steps=1, train_seconds=1.0)


def test_r1_zero_report_styles_aha_and_harder_split():
    df = pd.DataFrame([{"step": s, "eval/pass@1": p, "eval/cons@2": p, "eval/mean_length": 10.0,
                        "eval/reflection_rate": 0.0, "eval/format_rate": 1.0} for s, p in ((0, 0.0), (5, 1.0))])
    slip = "Check 38 + 777: 8 + 7 + 1 = 15. Wait, 8 + 7 + 1 = 16, so far 62."
    samples = {0: [{"id": "a", "completions": ["Easy.", "8 + 7 + 1 = 16, so far 6."], "correct": [False, False]}],
               5: [{"id": "a", "completions": [slip, "Check 3 + 4: 3 + 4 + 0 = 7, so far 7."], "correct": [True, True]}]}
    rep = r1_zero_report(df, k=2, steps=5, train_seconds=1.0, samples=samples, harder={"base": 0.0, "final": 0.25})
    assert rep["base_style_share"] == {"direct": 0.5, "short": 0.5, "careful": 0.0}
    assert rep["final_style_share"] == {"direct": 0.0, "short": 0.0, "careful": 1.0}
    assert (rep["base_aha_count"], rep["final_aha_count"]) == (0, 1)
    assert (rep["harder_base_pass_at_1"], rep["harder_final_pass_at_1"]) == (0.0, 0.25)
