"""Tests of r1lib.evaluation: the estimators on hand-computed values, majority voting up to
equivalence, evaluate() on scripted completions (every summary value computed by hand), tables and
files, and evaluate_checkpoints on the random nano model."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from r1lib.evaluation import (
    EvalResult,
    cons_at_k,
    default_ks,
    evaluate,
    evaluate_checkpoints,
    headline_columns,
    held_out,
    majority_vote,
    pass_at_k,
    pass_at_k_curve,
    resolve_checkpoints,
    results_table,
    write_results,
)
from r1lib.prompts import r1_zero_prompt
from r1lib.sampling import Completion, SamplingParams
from r1lib.tasks.base import Example

# ---------------------------------------------------------------- pass@k


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 2, 1, 0.4),            # c/n
    (5, 2, 2, 0.7),            # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (5, 0, 3, 0.0),            # nothing correct
    (5, 5, 1, 1.0),            # everything correct
    (5, 3, 3, 1.0),            # n - c = 2 < k = 3: every draw of 3 holds a correct one
    (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
    (4, 2, 2, 5 / 6),          # 1 - C(2,2)/C(4,2)
    (1, 1, 1, 1.0),
])
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    # C(1000, 500) overflows a float; the product form does not
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5)
    assert 0.0 < pass_at_k(1000, 1, 1) < pass_at_k(1000, 1, 2) < 1.0


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6), (0, 0, 1)])
def test_pass_at_k_rejects_bad_input(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_default_ks():
    assert default_ks(16) == (1, 2, 4, 8, 16)
    assert default_ks(6) == (1, 2, 4, 6)
    assert default_ks(1) == (1,)


def test_pass_at_k_curve():
    records = [{"id": "a", "k": 4, "n_correct": 2}, {"id": "b", "k": 4, "n_correct": 0}]
    curve = pass_at_k_curve(records, (1, 2, 4))
    assert list(curve) == [1, 2, 4]
    assert curve[1] == pytest.approx(0.25)
    assert curve[2] == pytest.approx((5 / 6) / 2)
    assert curve[4] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 8 samples"):
        pass_at_k_curve(records, (8,))


# ---------------------------------------------------------------- majority vote / cons@k


def test_majority_vote_groups_equivalent_forms():
    assert majority_vote(["3", "1/2", "0.5", "3", "\\frac{1}{2}"]) == "1/2"   # 1/2, 0.5, \frac{1}{2} vote together
    assert majority_vote(["0.5", "1/2", "3"]) == "0.5"                       # the first occurrence is returned
    assert majority_vote([" 4", "4 ", "5"]) == " 4"                          # whitespace is normalised


def test_majority_vote_ties_and_missing_answers():
    assert majority_vote(["3", "5"]) == "3"
    assert majority_vote(["5", "3", "3", "5"]) == "5"   # tie: the group seen first wins
    assert majority_vote([None, "4", None, None]) == "4"  # missing answers do not vote
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


def test_cons_at_k_uses_the_grade_of_the_voted_sample():
    answers, correct = ["3", "3", "2"], [False, False, True]
    assert cons_at_k(answers, correct) == 0.0
    assert cons_at_k(["2", "3", "3"], [True, False, False], k=1) == 1.0
    assert cons_at_k(["2", "3", "3"], [True, False, False]) == 0.0
    assert cons_at_k([None, None], [False, False]) == 0.0
    with pytest.raises(ValueError):
        cons_at_k(["1"], [True, False])


# ---------------------------------------------------------------- evaluate() on scripted completions


class ScriptedSampler:
    """Returns fixed completions and records what it was asked."""

    def __init__(self, script: list[list[Completion]]):
        self.script = script
        self.calls: list[tuple[list[str], SamplingParams]] = []

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        return self.script


def _c(text: str, n_tokens: int, reason: str = "stop") -> Completion:
    return Completion(text=text, token_ids=list(range(n_tokens)), finish_reason=reason)


EXAMPLES = [Example(id="a", task="arithmetic", problem="Compute 3 + 4.", answer="7"),
            Example(id="b", task="arithmetic", problem="Compute 1 + 1.", answer="2")]
SCRIPT = [
    [_c(" <think> 3 + 4 = 7 </think> <answer> 7 </answer>", 12),                          # correct
     _c(" <think> 3 + 4 = 8, wait, let me check: 7 </think> <answer> 7 </answer>", 20),    # correct, 2 reflection words
     _c(" <think> 3 + 4 = 8 </think> <answer> 8 </answer>", 12),                          # wrong
     _c(" <think> 3 + 4 is", 16, "length")],                                              # truncated: no answer, no format
    [_c(" <think> 1 + 1 = 3 所以 </think> <answer> 3 </answer>", 12),                       # wrong, language mixing
     _c(" <think> 1 + 1 = 3 </think> <answer> 3.0 </answer>", 12),                        # wrong (same group as 3)
     _c(" <think> 1 + 1 = 2 </think> <answer> 2 </answer>", 12),                          # correct
     _c(" <think> however, 4/2 = 2 </think> <answer> 4/2 </answer>", 14)],                # correct, 1 reflection word
]


@pytest.fixture(scope="module")
def scripted_result():
    sampler = ScriptedSampler(SCRIPT)
    result = evaluate(sampler, EXAMPLES, k=4, temperature=0.6, top_p=0.95, max_new_tokens=32, seed=5)
    return sampler, result


def test_evaluate_passes_the_protocol_to_the_sampler(scripted_result):
    sampler, _ = scripted_result
    (prompts, params), = sampler.calls
    assert prompts == [r1_zero_prompt("Compute 3 + 4."), r1_zero_prompt("Compute 1 + 1.")]
    assert (params.n, params.temperature, params.top_p, params.max_new_tokens, params.seed, params.stop) == \
        (4, 0.6, 0.95, 32, 5, ("</answer>",))


def test_evaluate_summary_hand_computed(scripted_result):
    _, result = scripted_result
    s = result.summary
    assert s["n_examples"] == 2 and s["k"] == 4
    assert s["pass@1"] == pytest.approx(0.5)              # (2/4 + 2/4) / 2
    assert s["pass@2"] == pytest.approx(5 / 6)            # 1 - C(2,2)/C(4,2) for both questions
    assert s["pass@4"] == pytest.approx(1.0)
    assert "pass@8" not in s
    assert s["cons@4"] == pytest.approx(0.5)              # a: "7" wins (correct); b: tie 3/3.0 vs 2/4/2 -> "3"
    assert s["format_rate"] == pytest.approx(7 / 8)       # only the truncated one lacks the format
    assert s["mean_length"] == pytest.approx(110 / 8)
    assert s["max_length"] == 20
    assert s["truncated_fraction"] == pytest.approx(1 / 8)
    assert s["reflection_rate"] == pytest.approx(2 / 8)
    assert s["reflection_words_per_1k_tokens"] == pytest.approx(1000 * 3 / 110)
    assert s["language_mix_rate"] == pytest.approx(1 / 8)
    assert s["language_consistency"] == pytest.approx(7 / 8)  # the mixed CoT's words are all CJK: LC 0
    assert list(s)[:5] == ["n_examples", "k", "pass@1", "pass@2", "pass@4"]
    json.dumps(result.to_dict(), allow_nan=False)  # records and summary are JSON-able


def test_evaluate_records(scripted_result):
    _, result = scripted_result
    a, b = result.records
    assert (a["id"], a["task"], a["gold"], a["k"], a["n_correct"]) == ("a", "arithmetic", "7", 4, 2)
    assert a["correct"] == [True, True, False, False]
    assert a["answers"] == ["7", "7", "8", None]
    assert (a["majority"], a["cons"]) == ("7", 1.0)
    assert a["lengths"] == [12, 20, 12, 16]
    assert a["finish_reasons"] == ["stop", "stop", "stop", "length"]
    assert a["format_ok"] == [True, True, True, False]
    assert a["reflection"] == [False, True, False, False] and a["reflection_words"] == [0, 2, 0, 0]
    assert a["completions"] == [SCRIPT[0][0].text, SCRIPT[0][1].text]
    assert b["correct"] == [False, False, True, True]
    assert (b["majority"], b["cons"]) == ("3", 0.0)
    assert b["language_mix"] == [True, False, False, False]
    assert result.lengths() == [12, 20, 12, 16, 12, 12, 12, 14]
    assert result.curve() == pytest.approx({1: 0.5, 2: 5 / 6, 4: 1.0})


def test_evaluate_target_language():
    s = evaluate(ScriptedSampler(SCRIPT), EXAMPLES, k=4, target_lang="zh").summary
    assert s["language_mix_rate"] == pytest.approx(3 / 8)     # the three CoTs with English words
    assert s["language_consistency"] == pytest.approx(5 / 8)  # those three score 0, the rest 1


def test_evaluate_rejects_bad_input():
    with pytest.raises(ValueError, match="no examples"):
        evaluate(ScriptedSampler([]), [], k=2)
    with pytest.raises(ValueError, match="expected 2 rows of 4"):
        evaluate(ScriptedSampler([SCRIPT[0][:3], SCRIPT[1]]), EXAMPLES, k=4)
    with pytest.raises(ValueError, match="ks"):
        evaluate(ScriptedSampler(SCRIPT), EXAMPLES, k=4, ks=(1, 8))


# ---------------------------------------------------------------- tables and files


ROWS = [
    {"checkpoint": "runs/x/base_model", "synthetic n_examples": 2, "synthetic k": 4, "synthetic pass@1": 0.5,
     "synthetic pass@2": 0.8, "synthetic pass@4": 0.75, "synthetic cons@4": 0.25, "synthetic format_rate": 1.0,
     "synthetic mean_length": 12.5},
    {"checkpoint": "runs/x/rl", "synthetic n_examples": 2, "synthetic k": 4, "synthetic pass@1": 0.625,
     "synthetic pass@2": 0.9, "synthetic pass@4": 1.0, "synthetic cons@4": 0.5, "synthetic format_rate": 0.875,
     "synthetic mean_length": 30.0},
]


def test_headline_columns_and_table():
    cols = headline_columns(ROWS)
    assert cols == ["synthetic pass@1", "synthetic cons@4", "synthetic pass@4", "synthetic format_rate",
                    "synthetic mean_length"]
    md = results_table(ROWS)
    lines = md.splitlines()
    assert lines[0] == ("| checkpoint | synthetic pass@1 | synthetic cons@4 | synthetic pass@4 | "
                        "synthetic format_rate | synthetic mean_length |")
    assert lines[2] == "| runs/x/base_model | 50.0 | 25.0 | 75.0 | 100.0 | 12.5 |"
    assert lines[3] == "| runs/x/rl | 62.5 | 50.0 | 100.0 | 87.5 | 30.0 |"
    custom = results_table(ROWS, ["synthetic pass@2", "synthetic n_examples"]).splitlines()
    assert custom[0] == "| checkpoint | synthetic pass@2 | synthetic n_examples |"
    assert custom[2] == "| runs/x/base_model | 80.0 | 2 |"


def test_write_results(tmp_path):
    result = EvalResult(records=[{"id": "q1", "k": 4, "n_correct": 1, "lengths": [3, 4, 5, 6]}],
                        summary={"k": 4, "pass@1": 0.25})
    rows = [dict(ROWS[0], details={"synthetic": result}), ROWS[1]]
    paths = write_results(rows, tmp_path / "out", name="eval")
    assert set(paths) == {"md", "csv", "json", "records"}
    assert "synthetic pass@1" in paths["md"].read_text() and "| runs/x/rl | 62.5 |" in paths["md"].read_text()
    with paths["csv"].open() as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["checkpoint"] for r in csv_rows] == ["runs/x/base_model", "runs/x/rl"]
    assert float(csv_rows[1]["synthetic pass@1"]) == 0.625  # raw fractions in CSV / JSON
    assert json.loads(paths["json"].read_text()) == ROWS       # details stay out of the table files
    rec, = [json.loads(line) for line in paths["records"].read_text().splitlines()]
    assert (rec["checkpoint"], rec["benchmark"], rec["id"]) == ("runs/x/base_model", "synthetic", "q1")
    assert not list((tmp_path / "out").glob("*.tmp"))


# ---------------------------------------------------------------- checkpoints x benchmarks


def _tiny_config(tmp_path: Path, **eval_overrides):
    from r1lib.config import load_config

    cfg_path = tmp_path / "eval_test.yaml"
    cfg_path.write_text(
        "name: evaltest\n"
        f"results_dir: {tmp_path / 'results'}\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
        "notebooks: []\n"
        "tasks: {mix: {arithmetic: 1.0}, n_train: 8, n_test: 3}\n"
        "model: {preset: nano, device: cpu}\n"
        "sampling: {batch_size: 8}\n"
        "eval: {benchmarks: [synthetic], k: 2, max_new_tokens: 8}\n"
        "tracking: {wandb_mode: disabled}\n")
    return load_config(cfg_path, {f"eval.{k}": v for k, v in eval_overrides.items()})


def test_resolve_checkpoints(tmp_path):
    cfg = _tiny_config(tmp_path)
    assert resolve_checkpoints(None, cfg) == [str(tmp_path / "runs" / "base_model")]
    policy = tmp_path / "runs" / "r1_zero" / "policy"      # a finished R1-Zero run joins the default list
    policy.mkdir(parents=True)
    (policy / "config.json").write_text("{}")
    assert resolve_checkpoints(None, cfg) == [str(tmp_path / "runs" / "base_model"), str(policy)]
    assert resolve_checkpoints(["a/b"], cfg) == ["a/b"]
    cfg2 = _tiny_config(tmp_path, checkpoints=["x", "y"])
    assert resolve_checkpoints(None, cfg2) == ["x", "y"]


def test_evaluate_checkpoints_on_nano_model(tmp_path, tiny_model_dir):
    bench = tmp_path / "mini.jsonl"  # a benchmark given as a file: eval.limit keeps its first rows
    bench.write_text("".join(json.dumps({"id": f"m{i}", "problem": f"Compute {i} + 1.", "answer": str(i + 1)}) + "\n"
                             for i in range(3)))
    cfg = _tiny_config(tmp_path, limit=2)
    rows = evaluate_checkpoints([str(tiny_model_dir)], ["synthetic", str(bench)], cfg, num_threads=1)
    assert len(rows) == 1
    row = rows[0]
    assert row["checkpoint"] == str(tiny_model_dir)
    assert row["synthetic n_examples"] == 3 and row["synthetic k"] == 2   # tasks.n_test
    assert row[f"{bench} n_examples"] == 2                                 # eval.limit
    for key in ("synthetic pass@1", "synthetic pass@2", "synthetic cons@2", "synthetic format_rate"):
        assert 0.0 <= row[key] <= 1.0
    assert 1 <= row["synthetic max_length"] <= 8
    result = row["details"]["synthetic"]
    assert len(result.records) == 3 and all(len(r["lengths"]) == 2 for r in result.records)
    assert [r["id"] for r in row["details"][str(bench)].records] == ["m0", "m1"]
    assert not math.isnan(row["synthetic mean_length"])
    assert headline_columns(rows)[:2] == ["synthetic pass@1", "synthetic cons@2"]
    with pytest.raises(ValueError, match="no checkpoints"):
        evaluate_checkpoints([], ["synthetic"], cfg)


def test_progress_bar_counts_every_sample_and_changes_nothing(tmp_path, tiny_model_dir, capsys):
    """``progress=True``: a bar of the sampled completions (k per example), the same result as without it, and
    the sampler's hook is removed afterwards."""
    from r1lib.sampling import make_sampler

    cfg = _tiny_config(tmp_path, limit=2)
    sampler = make_sampler(str(tiny_model_dir), backend="kv", device="cpu", batch_size=2)
    examples = held_out(cfg)
    kw = dict(k=2, max_new_tokens=6, seed=0)
    quiet = evaluate(sampler, examples, **kw)
    loud = evaluate(sampler, examples, progress=True, **kw)
    assert loud.summary == quiet.summary and sampler.on_batch is None
    err = capsys.readouterr().err
    assert "evaluate: 100%" in err and f"{2 * len(examples)}/{2 * len(examples)}" in err
