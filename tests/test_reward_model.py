"""r1lib.training.reward_model: a scalar-head reward model through TRL's RewardTrainer, and its scorer.

Pairs from the general task: chosen = the reference reply, rejected = one of ``bad_responses`` (off-topic, wrong
language, rambling). A random nano model learns to rank them in ~100 steps (~10 s).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("trl")

from r1lib.models import END, build_model, build_tokenizer, save_model  # noqa: E402
from r1lib.tasks import generate  # noqa: E402
from r1lib.tasks.general import bad_responses  # noqa: E402
from r1lib.training.reward_model import (  # noqa: E402
    RewardModelResult,
    RewardModelScorer,
    pair_accuracy,
    train_reward_model,
)

SETTINGS = dict(epochs=4.0, lr=3e-3, batch_size=16, max_length=192, seed=0, device="cpu")


def make_pairs(examples, seed: int):
    from datasets import Dataset

    rng = random.Random(seed)
    cols: dict[str, list[str]] = {"prompt": [], "chosen": [], "rejected": [], "kind": []}
    for ex in examples:
        bad = bad_responses(ex, rng)
        kind = rng.choice(sorted(bad))
        cols["prompt"].append(ex.problem)
        cols["chosen"].append(ex.answer)
        cols["rejected"].append(bad[kind])
        cols["kind"].append(kind)
    return Dataset.from_dict(cols)


@pytest.fixture(scope="module")
def data():
    train = make_pairs(generate("general", 400, split="train", seed=0), seed=0)
    test = make_pairs(generate("general", 100, split="test", seed=0), seed=1)
    return train, test


@pytest.fixture(scope="module")
def base_dir(data, tmp_path_factory) -> Path:
    """A random nano Llama with a tokenizer trained on the chat-formatted pairs (English and Chinese words)."""
    train, _ = data
    texts = [f"<|user|>{p}<|end|><|assistant|>{c}<|end|><|assistant|>{r}<|end|>"
             for p, c, r in zip(train["prompt"], train["chosen"], train["rejected"])]
    tok = build_tokenizer(texts, vocab_size=400)
    out = tmp_path_factory.mktemp("rm_base") / "nano"
    save_model(build_model("nano", tok, seed=0), tok, out)
    return out


@pytest.fixture(scope="module")
def rm_run(data, base_dir, tmp_path_factory):
    train, _ = data
    out = tmp_path_factory.mktemp("rm") / "stage"
    return train_reward_model(base_dir, train, out, **SETTINGS), out


@pytest.fixture(scope="module")
def scorer(rm_run):
    return RewardModelScorer(rm_run[0].model_dir, device="cpu", batch_size=7)


def test_result_and_layout(rm_run):
    result, out = rm_run
    assert isinstance(result, RewardModelResult) and not result.skipped
    assert result.model_dir == out / "model"
    assert result.n_pairs == 400 and result.n_dropped == 0
    assert result.steps == 4 * 25
    for name in ("checkpoints", "model", "data", "train_log.jsonl"):
        assert (out / name).exists(), name
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForSequenceClassification"]
    assert len(cfg["id2label"]) == 1  # num_labels=1: one scalar
    assert cfg["pad_token_id"] is not None
    assert (out / "model" / "tokenizer.json").exists()
    assert result.losses[-1] < 0.3 < result.losses[0]  # Bradley-Terry loss starts at ~log 2


def test_held_out_pair_accuracy(scorer, data):
    _, test = data
    acc = pair_accuracy(scorer, test)
    assert acc >= 0.9, acc
    for kind in ("off_topic", "wrong_language", "rambling"):  # every kind of rejected reply is ranked lower
        subset = test.filter(lambda r: r["kind"] == kind)
        assert pair_accuracy(scorer, subset) >= 0.8, kind


def test_scorer_formats_as_in_training(scorer):
    ids = scorer.encode("Hi!", "Hello! I am a small assistant. How can I help?")
    assert scorer.tokenizer.decode(ids) == ("<|bos|><|user|>Hi!<|end|><|assistant|>Hello! I am a small assistant. "
                                            "How can I help?<|end|>")
    # a reply that already ends with the end token is not given a second one
    assert scorer.encode("Hi!", "Hello!" + END) == scorer.encode("Hi!", "Hello!")


def test_batched_scores_equal_one_by_one(scorer, data):
    _, test = data
    prompts, replies = list(test["prompt"][:20]), list(test["rejected"][:20])  # mixed lengths: padding in batches
    batched = scorer.score(prompts, replies)
    single = [scorer.score([p], [r])[0] for p, r in zip(prompts, replies)]
    assert batched == pytest.approx(single, abs=1e-4)
    # left padding instead of right gives the same score too: the head reads the last non-pad token
    import torch

    a, b = scorer.encode(prompts[0], replies[0]), scorer.encode(prompts[1], replies[1])
    width = max(len(a), len(b))
    pad = scorer.pad_id
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in (a, b)])
    mask = (ids != pad).long()
    with torch.inference_mode():
        left = scorer.model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()
    assert left == pytest.approx(single[:2], abs=1e-4)
    assert scorer.score([], []) == []


def test_second_call_is_skipped(rm_run, data, base_dir):
    result, out = rm_run
    again = train_reward_model(base_dir, data[0], out, **SETTINGS)
    assert again.skipped and again.model_dir == result.model_dir
    assert (again.steps, again.losses, again.n_pairs) == (result.steps, result.losses, result.n_pairs)


def test_interrupted_run_resumes(data, base_dir, tmp_path):
    from transformers import TrainerCallback

    class InterruptAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt("simulated interrupt after step 3")

    small = data[0].select(range(64))  # 4 steps of 16 pairs
    out = tmp_path / "stage"
    kw = {**SETTINGS, "epochs": 1.0, "save_every": 2}
    with pytest.raises(KeyboardInterrupt):
        train_reward_model(base_dir, small, out, callbacks=[InterruptAt()], **kw)
    assert not (out / "model").exists() and (out / "checkpoints" / "checkpoint-2").is_dir()
    resumed = train_reward_model(base_dir, small, out, **kw)
    assert resumed.resumed_from == 2 and resumed.steps == 4 and not resumed.skipped
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    full = train_reward_model(base_dir, small, tmp_path / "full", **kw)  # the same run without a kill
    assert resumed.losses == pytest.approx(full.losses, rel=1e-4, abs=1e-5)
    one = RewardModelScorer(resumed.model_dir, device="cpu").score(["Hi!"], ["Hello!"])
    assert one == pytest.approx(RewardModelScorer(full.model_dir, device="cpu").score(["Hi!"], ["Hello!"]), abs=1e-4)


def test_bad_inputs_fail_before_any_work(base_dir, tmp_path):
    from datasets import Dataset

    out = tmp_path / "never"
    with pytest.raises(ValueError, match="empty"):
        train_reward_model(base_dir, Dataset.from_dict({"prompt": [], "chosen": [], "rejected": []}), out)
    with pytest.raises(ValueError, match="lacks column"):
        train_reward_model(base_dir, Dataset.from_dict({"prompt": ["Hi"], "chosen": ["Hello!"]}), out)
    cot = Dataset.from_dict({"prompt": ["Hi", "Hi"], "chosen": ["Hello!", "<think> hmm </think> Hello!"],
                             "rejected": ["bus", "bus"]})
    with pytest.raises(ValueError, match="row 1: 'chosen' contains a <think> tag"):
        train_reward_model(base_dir, cot, out)
    with pytest.raises(FileNotFoundError, match="not found"):
        train_reward_model(tmp_path / "no_such_model", Dataset.from_dict(
            {"prompt": ["Hi"], "chosen": ["Hello!"], "rejected": ["bus"]}), out)
    assert not out.exists()
