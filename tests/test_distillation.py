"""r1lib.distillation: the trace filters on crafted examples, a distillation learning test (a student's held-out
accuracy rises after SFT on a small trace set), the metrics and tables, the config, and the ``distill`` CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from r1lib.config import ConfigError, load_config
from r1lib.distillation import (TRACE_REASONS, distillation_metrics, row_format, table5_markdown, table6_markdown,
                                verified_traces)

REPO_ROOT = Path(__file__).resolve().parents[1]
T = "<think> 12 + 30 = 42 </think> The answer is \\boxed{42}."


# --------------------------------------------------------------------------------------------
# The trace filter on crafted examples
# --------------------------------------------------------------------------------------------


def test_verified_traces_messages_layout_keeps_whole_chats_and_drops_malformed():
    rows = [{"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": T}]},
            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q2"},
                          {"role": "assistant", "content": T}]},
            {"messages": [{"role": "user", "content": "Q3"}]},                                 # no reply
            {"messages": [{"role": "assistant", "content": T}]},                               # no question
            {"messages": []}]
    kept, stats = verified_traces(rows)
    assert [r["messages"][-2]["content"] for r in kept] == ["Q1", "Q2"]
    assert kept[1]["messages"][0] == {"role": "system", "content": "S"}
    assert stats == {"traces": 5, "kept": 2, "dropped": {**dict.fromkeys(TRACE_REASONS, 0), "malformed": 3}}


def test_verified_traces_openr1_layout_keeps_only_verified_generations_with_reasoning():
    row = {"problem": "What is 12 + 30?", "answer": "42",
           "generations": [T, "<think> 12 + 30 = 43 </think> \\boxed{43}", "\\boxed{42}", T.replace("12 +", "12+")],
           "correctness_math_verify": [True, False, True, True]}
    kept, stats = verified_traces([row])
    assert len(kept) == 2 and all(r["messages"][0] == {"role": "user", "content": "What is 12 + 30?"} for r in kept)
    assert kept[0]["messages"][1]["content"] == T
    assert stats["dropped"] == {**dict.fromkeys(TRACE_REASONS, 0), "unverified": 1, "no_reasoning": 1}


def test_verified_traces_solution_layout_is_graded_against_the_answer():
    rows = [{"problem": "a", "solution": T, "answer": "42"},
            {"problem": "b", "solution": T, "answer": "41"},                          # wrong
            {"problem": "c", "solution": "<think> hm </think> no idea", "answer": "42"},  # no final answer
            {"problem": "d", "response": "\\boxed{42}", "answer": "42"},             # right, but no reasoning
            {"question": "e", "response": T.replace("42}", "42.0}"), "answer": 42}]   # same value, other field names
    kept, stats = verified_traces(rows)
    assert [r["messages"][0]["content"] for r in kept] == ["a", "e"]
    assert stats["dropped"] == {**dict.fromkeys(TRACE_REASONS, 0), "wrong": 1, "no_answer": 1, "no_reasoning": 1}


@pytest.mark.parametrize("row, words", [
    ({"text": "x"}, ["row 0", "layouts", "['text']"]),
    ({"problem": "p", "generations": ["x"]}, ["row 0", "correctness_math_verify"]),
    ({"problem": "p", "answer": "1"}, ["row 0", "solution"]),
])
def test_a_row_in_no_layout_is_named_by_index_and_fields(row, words):
    with pytest.raises(ValueError) as err:
        verified_traces([row], where="traces.jsonl")
    assert "traces.jsonl" in str(err.value) and all(w in str(err.value) for w in words)


def test_the_teacher_filter_on_crafted_samples(tmp_path):
    """The teacher's samples go through stage 3's filters (r1lib.stage_data): wrong, mixed-language and cut traces
    are dropped; identical correct traces count once."""
    from r1lib.sampling import Completion
    from r1lib.stage_data import sample_and_filter
    from r1lib.tasks.base import Example

    ex = Example(id="0", task="addition", problem="Compute 12 + 30.", answer="42")
    good = "<think> 2 + 0 = 2, so far 2. 1 + 3 = 4, so far 42. </think> The answer is \\boxed{42}."
    samples = [Completion(good, [], "stop"), Completion(good, [], "stop"),
               Completion(good.replace("42", "43"), [], "stop"),
               Completion(good.replace("so far 2.", "目前 2."), [], "stop"),
               Completion(good, [], "length")]

    class Fake:
        def generate(self, prompts, params):
            return [samples[: params.n] for _ in prompts]

    class Fmt:
        stop = ("<|end|>",)

        def __call__(self, problem):
            return problem

    rows, stats = sample_and_filter(Fake(), [ex], n=5, temperature=1.0, max_new_tokens=64, prompt_format=Fmt(),
                                    seed=0, readable_format=True, max_per_prompt=2)
    assert [r["messages"][1]["content"] for r in rows] == [good]
    d = stats.to_dict()
    assert d["sampled"] == 5 and d["kept"] == 2
    assert d["dropped"]["wrong"] == 1 and d["dropped"]["language"] == 1 and d["dropped"]["overlong"] == 1


# --------------------------------------------------------------------------------------------
# Distillation learning test
# --------------------------------------------------------------------------------------------


LEGS = {"cow": 4, "bird": 2, "spider": 8, "ant": 6, "snake": 0}


def _problem(i: int, rng: random.Random):
    """A problem of a two-step procedure (look up the legs, multiply): "Pen 4821 holds 3 ants. How many legs?"."""
    from r1lib.tasks.base import Example

    animal, k, pen = rng.choice(sorted(LEGS)), rng.randint(1, 3), rng.randint(1000, 9999)
    problem = f"Pen {pen} holds {k} {animal}s. How many legs?"
    trace = (f"<think> A {animal} has {LEGS[animal]} legs. {k} x {LEGS[animal]} = {k * LEGS[animal]}. </think> "
             f"The answer is \\boxed{{{k * LEGS[animal]}}}.")
    return Example(id=str(i), task="external", problem=problem, answer=str(k * LEGS[animal])), trace


@pytest.mark.slow
def test_a_student_learns_from_a_small_trace_set(tmp_path, monkeypatch):
    """A random nano student, SFT (``distill_student``) on 300 teacher traces of a two-step procedure: its
    accuracy on held-out problems (pens it never saw; r1lib's evaluation in the chat format) goes from 0 to most."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from datasets import Dataset
    from transformers import AutoTokenizer

    from r1lib.distillation import distill_student
    from r1lib.evaluation import evaluate
    from r1lib.models import build_model, build_tokenizer, save_model
    from r1lib.prompts import PromptFormat
    from r1lib.sampling import make_sampler

    rng = random.Random(0)
    train = [_problem(i, rng) for i in range(300)]
    held_out = [ex for ex, _ in (_problem(1000 + i, rng) for i in range(40))]
    tok = build_tokenizer([f"<|user|>{ex.problem}<|end|><|assistant|>{t}<|end|>" for ex, t in train], vocab_size=300)
    base = tmp_path / "student_base"
    save_model(build_model("nano", tok, seed=0), tok, base)

    def accuracy(model_dir: Path) -> float:
        fmt = PromptFormat("chat", AutoTokenizer.from_pretrained(model_dir))
        res = evaluate(make_sampler(str(model_dir), backend="kv", device="cpu"), held_out, k=2, temperature=0.6,
                       max_new_tokens=48, stop=fmt.stop, seed=0, prompt_format=fmt)
        return res.summary["pass@1"]

    before = accuracy(base)
    cfg = load_config(REPO_ROOT / "experiments" / "default.yaml",
                      {"distill.epochs": 16, "distill.lr": 3e-3, "distill.batch_size": 16, "distill.max_length": 96,
                       "model.device": "cpu", "tracking.wandb_mode": "disabled"})
    data = Dataset.from_list([{"messages": [{"role": "user", "content": ex.problem},
                                            {"role": "assistant", "content": t}]} for ex, t in train])
    sft = distill_student(cfg, str(base), data, tmp_path / "sft", seed=0)
    after = accuracy(sft.model_dir)
    assert before == 0.0
    assert after >= 0.6, (before, after)


# --------------------------------------------------------------------------------------------
# Metrics, tables, config
# --------------------------------------------------------------------------------------------


def _row(p: float) -> dict[str, float]:
    return {"pass_at_1": p, "cons_at_k": p, "format_rate": 1.0, "language_consistency": 1.0, "mean_length": 100.0,
            "reflection_rate": 0.1}


def test_metrics_have_the_documented_fields_and_the_comparison_statistics():
    from r1lib.distillation import DistillationResult, Student

    cfg = load_config(REPO_ROOT / "experiments" / "default.yaml")
    students = [Student("nano", "a", 140_000, "pretrained"), Student("tiny", "b", 920_000, "teacher_base")]
    res = DistillationResult(teacher={"path": "t", "params": 920_000}, data={"seconds": 20.0, "n_rows": 10},
                             students=students)
    res.rows = {"teacher": _row(.9), "nano/base": _row(.08), "nano/distilled": _row(.75),
                "nano/distilled_seed1": _row(.73), "nano/rl_seed0": _row(.6), "nano/rl_seed1": _row(.4),
                "tiny/base": _row(.1), "tiny/distilled": _row(.88)}
    res.sft = {"nano/distilled": {"seconds": 28.0, "train_tokens": 300, "steps": 234},
               "nano/distilled_seed1": {"seconds": 30.0, "train_tokens": 300, "steps": 234},
               "tiny/distilled": {"seconds": 50.0, "train_tokens": 300, "steps": 234}}
    res.rl = {"nano/rl_seed0": {"seconds": 60.0, "train_tokens": 1000, "steps": 60},
              "nano/rl_seed1": {"seconds": 62.0, "train_tokens": 1100, "steps": 60}}
    m = distillation_metrics(cfg, res)
    assert m["teacher"]["pass_at_1"] == .9
    assert set(m["students"]) == {"nano", "tiny"}
    for s in m["students"].values():
        assert {"params", "distilled_pass_at_1", "distilled_cons_at_k", "base_pass_at_1"} <= set(s)
    v = m["distill_vs_rl"]
    assert {"rl_pass_at_1_mean", "rl_pass_at_1_std", "distill_pass_at_1_mean", "distill_pass_at_1_std",
            "rl_seconds", "distill_seconds", "seeds"} <= set(v)
    assert v["rl_pass_at_1_mean"] == pytest.approx(.5) and v["rl_pass_at_1_std"] == pytest.approx(0.1414, abs=1e-4)
    assert v["distill_pass_at_1_mean"] == pytest.approx(.74) and v["rl_seconds"] == 61.0
    assert v["distill_seconds"] == 29.0 and v["rl_train_tokens"] == 1050 and v["distill_wins"]
    json.dumps(m)
    assert "| nano: distilled | 140,000 | 75.0 |" in table5_markdown(m)
    assert "50.0 ± 14.1 | 60 | 61 | 1,050 |" in table6_markdown(m)


def test_row_formats():
    assert row_format("nano/base") == "r1_zero" and row_format("nano/rl_seed1") == "r1_zero"
    assert row_format("teacher") == "chat" and row_format("nano/distilled_seed1") == "chat"
    assert row_format("nano/distilled+rl") == "chat"


def test_config_rejects_a_repeated_student_and_no_seed():
    with pytest.raises(ConfigError, match="distill.students"):
        load_config(REPO_ROOT / "experiments" / "default.yaml", {"distill.students": ["nano", "nano"]})
    with pytest.raises(ConfigError, match="distill.seeds"):
        load_config(REPO_ROOT / "experiments" / "default.yaml", {"distill.seeds": []})


def test_default_students_are_no_larger_than_the_teacher():
    from r1lib.models import PRESETS

    cfg = load_config(REPO_ROOT / "experiments" / "default.yaml")
    size = lambda p: PRESETS[p].hidden_size * PRESETS[p].num_hidden_layers  # noqa: E731
    assert all(size(s) <= size(cfg.model.preset) for s in cfg.distill.students)
    assert len(cfg.distill.students) >= 2 and len(cfg.distill.seeds) >= 2
