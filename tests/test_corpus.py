from __future__ import annotations

import random

import pytest

from r1lib.corpus import (ERROR_RATES, CorpusConfig, build_corpus, classify_style, corpus_stats, error_rate,
                          render_document)
from r1lib.tasks.base import Example

MIX = {"arithmetic": 1.0, "linear": 1.0, "word": 1.0}


@pytest.fixture(scope="module")
def docs():
    return build_corpus(3000, mix=MIX, difficulty=(1, 5), seed=0)


def test_corpus_is_deterministic():
    a = build_corpus(50, mix=MIX, seed=3)
    b = build_corpus(50, mix=MIX, seed=3)
    assert [d.text for d in a] == [d.text for d in b]
    assert [d.text for d in a] != [d.text for d in build_corpus(50, mix=MIX, seed=4)]


def test_corpus_proportions_match_config(docs):
    cfg = CorpusConfig()
    stats = corpus_stats(docs)
    total_style = sum(cfg.styles.values())
    for style, w in cfg.styles.items():
        assert abs(stats["styles"][style] - w / total_style) < 0.03, (style, stats["styles"])
    total_frame = sum(cfg.frames.values())
    for frame, w in cfg.frames.items():
        assert abs(stats["frames"][frame] - w / total_frame) < 0.03, (frame, stats["frames"])
    step_share = stats["styles"]["long"] + stats["styles"]["verify"]
    assert abs(stats["language_mixed"] - cfg.language_mix * step_share) < 0.02


def test_longer_styles_are_more_often_correct_on_hard_problems(docs):
    hard = [d for d in docs if d.difficulty >= 4]
    wrong = {s: sum(not d.correct for d in hard if d.style == s) / max(1, sum(d.style == s for d in hard))
             for s in ("direct", "short", "long", "verify")}
    assert wrong["direct"] > wrong["short"] > wrong["long"] >= wrong["verify"]
    assert error_rate("direct", 5) == pytest.approx(ERROR_RATES["direct"][1])
    assert error_rate("verify", 1) == pytest.approx(ERROR_RATES["verify"][0])


def test_rendered_documents_carry_the_designed_features(docs):
    r1 = [d for d in docs if d.frame == "r1_format"]
    assert all("<think>" in d.text and "</answer>" in d.text and "A conversation between User and Assistant" in d.text
               for d in r1)
    plain = [d for d in docs if d.frame == "plain"]
    assert not any("A conversation between User and Assistant" in d.text for d in plain)
    verify = [d for d in docs if d.style == "verify" and not d.language_mixed]
    assert all(("wait" in d.text.lower() or "verify" in d.text.lower() or "check" in d.text.lower()) for d in verify)
    mixed = [d for d in docs if d.language_mixed]
    assert mixed and all(any("\u4e00" <= ch <= "\u9fff" for ch in d.text) for d in mixed)
    assert not any(any("\u4e00" <= ch <= "\u9fff" for ch in d.text) for d in docs if not d.language_mixed)


def test_correct_solution_ends_with_gold_and_wrong_one_does_not():
    ex = Example(id="x", task="arithmetic", problem="Compute 2 + 3 * 4.", answer="14",
                 meta={"difficulty": 1, "steps": [("3 * 4", "12"), ("2 + 12", "14")]})
    rng = random.Random(0)
    ok = render_document(ex, rng, CorpusConfig(styles={"long": 1}, frames={"r1_format": 1}, error_scale=0))
    assert ok.correct and "<answer> 14 </answer>" in ok.text and "3 * 4 = 12." in ok.text
    bad = render_document(ex, rng, CorpusConfig(styles={"long": 1}, frames={"r1_format": 1}, error_scale=100))
    assert not bad.correct and "<answer> 14 </answer>" not in bad.text


def test_classify_style_recovers_rendered_style(docs):
    # The classifier must recognise the styles it is used to count after RL.
    sample = [d for d in docs if not d.language_mixed][:400]
    agree = sum(classify_style(d.text.split("Assistant:")[-1]) == d.style for d in sample) / len(sample)
    assert agree > 0.9
