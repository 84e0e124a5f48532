from __future__ import annotations

import random

import pytest

from r1lib.analysis import equations, find_aha
from r1lib.config import CorpusConfig
from r1lib.corpus import (FRAMES, STYLES, build_corpus, classify_style, corpus_stats, frame_text, render_document,
                          render_reasoning, style_distribution, style_samples)
from r1lib.tasks import generate
from r1lib.tasks.base import Example

MIX = {"addition": 1.0}


@pytest.fixture(scope="module")
def docs():
    return build_corpus(4000, mix=MIX, difficulty=(1, 2), seed=0)


def test_corpus_is_deterministic():
    a = build_corpus(60, mix=MIX, seed=3)
    b = build_corpus(60, mix=MIX, seed=3)
    assert [d.text for d in a] == [d.text for d in b]
    assert [d.text for d in a] != [d.text for d in build_corpus(60, mix=MIX, seed=4)]


def test_corpus_proportions_match_config(docs):
    cfg = CorpusConfig()
    stats = corpus_stats(docs)
    for name, weights, measured in (("frames", cfg.frames, stats["frames"]),
                                    ("template", cfg.template_styles, stats["styles_under_template"]),
                                    ("plain", cfg.plain_styles, stats["styles_plain"])):
        total = sum(weights.values())
        for key, w in weights.items():
            assert abs(measured[key] - w / total) < 0.035, (name, key, measured)
    step_share = 1 - stats["styles"]["direct"]
    assert abs(stats["language_mixed"] - cfg.language_mix * step_share) < 0.02
    assert abs(stats["self_corrected_careful"] - cfg.self_correction) < 0.05
    assert abs(stats["general"] - cfg.general) < 0.01
    assert stats["wrong"] == 0.0


def test_template_mostly_direct_plain_mostly_steps(docs):
    """The design: the reliable procedure is common only outside the R1-Zero template."""
    stats = corpus_stats(docs)
    assert stats["styles_under_template"]["direct"] > 0.7
    assert stats["styles_plain"]["careful"] > 3 * stats["styles_under_template"]["careful"]


def test_every_written_step_is_a_true_single_digit_fact(docs):
    facts = [eq for d in docs if d.style != "general" and not d.self_corrected for eq in equations(d.text)]
    assert len(facts) > 5000
    assert all(eq["correct"] for eq in facts)
    # Every fact is a column: at most three one- or two-digit numbers.
    assert all(max(len(x) for x in eq["lhs"].replace("+", " ").replace("-", " ").split()) <= 2 for eq in facts)


def test_documents_end_with_the_gold_answer():
    ex = generate("addition", 1, seed=0, difficulty=2)[0]
    rng = random.Random(0)
    cfg = CorpusConfig(frames={"r1_format": 1}, template_styles={"careful": 1})
    doc = render_document(ex, rng, cfg)
    assert doc.correct and doc.text.endswith(f"<answer> {ex.answer} </answer>")
    wrong = render_document(ex, rng, cfg.model_copy(update={"wrong_answers": 1.0}))
    assert not wrong.correct and f"<answer> {ex.answer} </answer>" not in wrong.text


def test_careful_style_hand_checked():
    ex = Example(id="x", task="addition", problem="Compute 386 + 7776.", answer="8162",
                 meta={"ops": [[386, "+", 7776]], "difficulty": 2})
    assert render_reasoning(ex, "careful") == (
        "Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. Check 38 + 777: 8 + 7 + 1 = 16, so far 62. "
        "Check 3 + 77: 3 + 7 + 1 = 11, so far 162. Check 0 + 7: 0 + 7 + 1 = 8, so far 8162.")
    assert render_reasoning(ex, "short") == (
        "6 + 6 + 0 = 12, so far 2. 8 + 7 + 1 = 16, so far 62. 3 + 7 + 1 = 11, so far 162. 0 + 7 + 1 = 8, so far 8162.")
    assert render_reasoning(ex, "careful", zh=True).count("目前") == 4


def test_self_correction_is_an_aha_fix():
    ex = Example(id="x", task="subtraction", problem="Compute 5032 - 1478.", answer="3554",
                 meta={"ops": [[5032, "-", 1478]], "difficulty": 1})
    text = render_reasoning(ex, "careful", slip=True, rng=random.Random(1))
    assert text.count("Wait, ") == 1
    aha = find_aha(text)
    assert aha is not None and aha["word"] == "wait"
    assert aha["wrong"].split(" = ")[0] == aha["fixed"].split(" = ")[0]
    assert render_reasoning(ex, "short", slip=True, rng=random.Random(1)).count("Wait") == 0  # careful only


def test_frames():
    rng = random.Random(0)
    assert frame_text("Compute 1 + 2.", "R", "3", "r1_format", rng).endswith("Assistant: <think> R </think> <answer> 3 </answer>")
    assert "A conversation between User and Assistant" not in frame_text("Compute 1 + 2.", "R", "3", "plain", rng)
    assert all(f in FRAMES for f in ("r1_format", "r1_loose", "plain"))
    with pytest.raises(ValueError, match="unknown frame"):
        frame_text("p", "r", "a", "nope", rng)


def test_language_mixing_only_where_designed(docs):
    mixed = [d for d in docs if d.language_mixed]
    assert mixed and all(any("\u4e00" <= ch <= "\u9fff" for ch in d.text) for d in mixed)
    assert not any(any("\u4e00" <= ch <= "\u9fff" for ch in d.text) for d in docs if not d.language_mixed)
    assert not any(d.language_mixed for d in docs if d.style == "direct")


def test_general_documents_are_non_reasoning(docs):
    general = [d for d in docs if d.style == "general"]
    assert general and {d.frame for d in general} == {"chat", "user", "qa"}
    assert not any("<think>" in d.text or " = " in d.text for d in general)


def test_classify_style_recovers_rendered_style(docs):
    sample = [d for d in docs if d.style != "general"][:600]
    agree = sum(classify_style(d.text.split("Assistant:")[-1].split("\n", 1)[-1]) == d.style for d in sample) / len(sample)
    assert agree > 0.97
    assert style_distribution([]) == {s: 0.0 for s in STYLES}
    assert classify_style(None) == "direct"


def test_older_tasks_still_render():
    docs = build_corpus(200, mix={"arithmetic": 1, "linear": 1, "word": 1, "countdown": 1}, difficulty=(1, 3), seed=0)
    assert {d.style for d in docs if d.style != "general"} == set(STYLES)
    assert all(eq["correct"] for d in docs if not d.self_corrected for eq in equations(d.text))
    samples = style_samples(docs)
    assert {"direct", "short", "careful"} <= set(samples)


def test_corpus_config_is_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown name 'carefull'"):
        CorpusConfig(template_styles={"carefull": 1.0})
    with pytest.raises(ValidationError, match="at least one weight"):
        CorpusConfig(frames={"plain": 0.0})
    with pytest.raises(ValidationError):
        CorpusConfig(self_correction=1.5)
