from __future__ import annotations

import random

import pytest

from r1lib.analysis import equations
from r1lib.corpus import (ERROR_RATES, CorpusConfig, build_corpus, classify_style, corpus_stats, drill_document,
                          error_rate, render_document, step_facts, styles_for_frame)
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


# --- optional levers (off by default, so the default corpus is unchanged) ------------------------------------------

CALIB = CorpusConfig(styles={"direct": 0.15, "short": 0.25, "long": 0.35, "verify": 0.25},
                     template_styles={"direct": 0.45, "short": 0.30, "long": 0.15, "verify": 0.10},
                     error_rates={"direct": (0.5, 0.8), "short": (0.25, 0.5), "long": (0.03, 0.1), "verify": (0.01, 0.03)},
                     drill=0.4, restate=False)


@pytest.fixture(scope="module")
def calib_docs():
    return build_corpus(3000, mix=MIX, difficulty=(1, 2), seed=0, cfg=CALIB)


def test_default_corpus_has_no_drill_and_restates(docs):
    assert corpus_stats(docs)["drill"] == 0.0
    assert all("we need to solve: " in d.text for d in docs if d.style == "long" and not d.language_mixed)


def test_template_styles_and_drill_share(calib_docs):
    stats = corpus_stats(calib_docs)
    assert abs(stats["drill"] - 0.4) < 1e-9 and stats["n_documents"] == 1800
    template = [d for d in calib_docs if d.frame in ("r1_format", "r1_loose")]
    plain = [d for d in calib_docs if d.frame == "plain"]
    for group, frame in ((template, "r1_format"), (plain, "plain")):
        weights = styles_for_frame(CALIB, frame)
        for style, w in weights.items():  # weights sum to 1; ~1,100 / ~700 documents: sd of a share < 0.02
            assert abs(sum(d.style == style for d in group) / len(group) - w) < 0.05, (frame, style)
    assert stats["wrong_by_style"]["direct"] > 0.4 > 0.1 > stats["wrong_by_style"]["long"]
    assert error_rate("direct", 1, rates=CALIB.error_rates) == pytest.approx(0.5)
    longs = [d for d in calib_docs if d.style == "long" and not d.language_mixed]
    assert longs and all("we need to solve it step by step." in d.text for d in longs)
    assert all(classify_style(d.text.split("Assistant:")[-1]) == "long" for d in longs if d.frame != "plain")


def test_drill_documents_are_true_facts_from_the_step_ranges(calib_docs):
    drills = [d for d in calib_docs if d.style == "drill"]
    assert drills and all(d.frame == "drill" and d.task == "drill" for d in drills)
    eqs = [e for d in drills for e in equations(d.text)]
    assert len(eqs) == len(drills) * CALIB.drill_facts
    assert all(e["correct"] for e in eqs)
    ex = Example(id="x", task="word", problem="p", answer="17",
                 meta={"difficulty": 2, "steps": [("money saved = 3 * 7", "21"), ("money left = 21 - 4", "17")]})
    assert step_facts([ex]) == [(3, "*", 7, 21), (21, "-", 4, 17)]
    # a step whose tail is part of a longer expression is not a fact: 64 - 50 != -24
    long_step = Example(id="y", task="linear", problem="p", answer="-6",
                        meta={"difficulty": 5, "steps": [("8x - 4x = -32 - 6 + 64 - 50", "-24")]})
    assert step_facts([long_step]) == []
    text = drill_document(step_facts([ex]), random.Random(0), 200)
    parsed = equations(text)
    assert len(parsed) == 200 and {e["lhs"].split()[1] for e in parsed} == {"*", "-"}
    assert all(e["correct"] for e in parsed)
    # neighbours move each operand by at most 3
    assert all(abs(int(e["lhs"].split()[0]) - (3 if e["lhs"].split()[1] == "*" else 21)) <= 3 for e in parsed)


def test_drill_share_counts_documents():
    assert not any(x.style == "drill" for x in build_corpus(100, mix=MIX, seed=1, cfg=CorpusConfig(drill=0.0)))
    d = build_corpus(100, mix=MIX, seed=1, cfg=CorpusConfig(drill=0.25))
    assert len(d) == 100 and sum(x.style == "drill" for x in d) == 25
