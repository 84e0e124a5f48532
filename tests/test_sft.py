"""r1lib.training.sft: SFT through TRL's SFTTrainer on a nano model (a fixed answer format, ~200 chats).

One module-scoped run (4 epochs, ~50 steps, a few seconds) serves most tests; the resume test trains a second,
interrupted copy and checks that it ends where the uninterrupted run ended.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("trl")

from transformers import TrainerCallback  # noqa: E402

from r1lib.models import END, build_model, build_tokenizer, save_model  # noqa: E402
from r1lib.training.sft import SFTResult, run_sft  # noqa: E402

N_TRAIN = 200
SETTINGS = dict(epochs=4.0, lr=3e-3, batch_size=16, max_length=96, seed=0, device="cpu")


def chat(a: int, b: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Compute {a} + {b}."},
            {"role": "assistant", "content": f"<think> {a} + {b} = {a + b} </think> The answer is \\boxed{{{a + b}}}."}]


def split_pairs() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    rng = random.Random(0)
    pairs = [(a, b) for a in range(40) for b in range(40)]
    rng.shuffle(pairs)
    return pairs[:N_TRAIN], pairs[N_TRAIN:N_TRAIN + 24]


def make_dataset(pairs):
    from datasets import Dataset

    return Dataset.from_dict({"messages": [chat(a, b) for a, b in pairs]})


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory) -> Path:
    """A random nano Llama with a BPE tokenizer (and r1lib's chat template) trained on the chat-formatted texts."""
    texts = [f"<|user|>Compute {a} + {b}.<|end|><|assistant|><think> {a} + {b} = {a + b} </think> "
             f"The answer is \\boxed{{{a + b}}}.<|end|>" for a in range(40) for b in range(0, 40, 3)]
    tok = build_tokenizer(texts, vocab_size=300)
    out = tmp_path_factory.mktemp("sft_init") / "nano"
    save_model(build_model("nano", tok, seed=0), tok, out)
    return out


class CaptureBatch(TrainerCallback):
    """Takes one collated batch from the Trainer's dataloader after training (no effect on the run)."""

    batch = None

    def on_train_end(self, args, state, control, train_dataloader=None, **kwargs):
        self.batch = next(iter(train_dataloader))


class InterruptAt(TrainerCallback):
    """Simulates a kill: raises KeyboardInterrupt once ``step`` optimizer steps are done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"simulated interrupt after step {self.step}")


@pytest.fixture(scope="module")
def sft_run(init_dir, tmp_path_factory):
    train_pairs, _ = split_pairs()
    out = tmp_path_factory.mktemp("sft") / "stage"
    capture = CaptureBatch()
    result = run_sft(init_dir, make_dataset(train_pairs), out, callbacks=[capture], **SETTINGS)
    return result, out, capture.batch


def test_result_and_layout(sft_run):
    result, out, _ = sft_run
    assert isinstance(result, SFTResult) and not result.skipped and result.resumed_from is None
    assert result.model_dir == out / "model"
    assert result.n_examples == N_TRAIN
    assert result.steps == 4 * 13  # ceil(200 / 16) = 13 steps per epoch
    for name in ("checkpoints", "model", "data", "train_log.jsonl"):
        assert (out / name).exists(), name
    assert any(p.name.startswith("checkpoint-") for p in (out / "checkpoints").iterdir())
    from datasets import load_from_disk

    assert load_from_disk(str(out / "data")).num_rows == N_TRAIN
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, result.steps + 1))
    assert all({"step", "loss", "lr", "epoch"} <= set(r) for r in log)
    assert result.losses == [r["loss"] for r in log]


def test_loss_falls_and_lr_decays_to_a_tenth(sft_run):
    result, out, _ = sft_run
    first, last = result.losses[0], result.losses[-1]
    assert last < 0.6 * first, (first, last)
    lrs = [json.loads(line)["lr"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    peak = SETTINGS["lr"]
    assert max(lrs) == pytest.approx(peak, rel=1e-6)
    # cosine_with_min_lr: ends at min_lr_ratio (0.1) x peak
    assert 0.1 * peak <= lrs[-1] <= 0.105 * peak, lrs[-5:]


def test_train_tokens_count_the_assistant_replies(sft_run, init_dir):
    from transformers import AutoTokenizer

    result, _, _ = sft_run
    tok = AutoTokenizer.from_pretrained(str(init_dir))
    train_pairs, _ = split_pairs()
    per_epoch = sum(len(tok(chat(a, b)[1]["content"] + END, add_special_tokens=False)["input_ids"])
                    for a, b in train_pairs)
    assert result.train_tokens == 4 * per_epoch


def test_loss_mask_covers_only_the_assistant_turn(sft_run, init_dir):
    from transformers import AutoTokenizer

    _, _, batch = sft_run
    assert batch is not None
    tok = AutoTokenizer.from_pretrained(str(init_dir))
    assistant_id = tok.convert_tokens_to_ids("<|assistant|>")
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        start = ids.index(assistant_id) + 1  # first token of the reply
        assert all(lab == -100 for lab in labels[:start]), "bos / user turn / assistant header must be masked"
        trained = [t for t, lab in zip(ids, labels) if lab != -100]
        assert labels[start:start + len(trained)] == trained  # one contiguous block right after the header
        text = tok.decode(trained)
        assert text.startswith("<think>") and text.endswith("}." + END), text  # the reply and its <|end|>
        assert "Compute" not in text and "<|user|>" not in text


def test_model_loads_and_greedy_generation_follows_the_format(sft_run):
    from r1lib.models import load_model
    from r1lib.sampling import SamplingParams, make_sampler

    result, _, _ = sft_run
    model, tok = load_model(result.model_dir, device="cpu")
    assert model.config.model_type == "llama" and tok.chat_template
    assert model.config.use_cache  # the Trainer's use_cache=False is not saved into the model
    _, held_out = split_pairs()
    prompts = [tok.apply_chat_template([chat(a, b)[0]], tokenize=False, add_generation_prompt=True)
               for a, b in held_out]
    assert prompts[0].endswith("<|assistant|>")
    sampler = make_sampler(model, tok, backend="kv")
    outs = sampler.generate(prompts, SamplingParams(temperature=0, max_new_tokens=48, stop=()))
    texts = [o[0].text for o in outs]
    fmt = re.compile(r"^\s*<think>.+</think>.*\\boxed\{", re.S)
    ok = sum(bool(fmt.search(t)) for t in texts)
    assert ok >= 0.8 * len(texts), texts[:5]
    assert sum(o[0].finish_reason == "eos" for o in outs) >= 0.8 * len(outs)  # it learned to stop (<|end|>)


def test_second_call_is_skipped(sft_run, init_dir):
    result, out, _ = sft_run
    train_pairs, _ = split_pairs()
    again = run_sft(init_dir, make_dataset(train_pairs), out, **SETTINGS)
    assert again.skipped
    assert again.model_dir == result.model_dir
    assert (again.steps, again.losses, again.train_tokens, again.n_examples) == (
        result.steps, result.losses, result.train_tokens, result.n_examples)


def test_interrupted_run_resumes_from_the_newest_checkpoint(sft_run, init_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    full, _, _ = sft_run
    train = make_dataset(split_pairs()[0])
    out = tmp_path / "stage"
    with pytest.raises(KeyboardInterrupt):
        run_sft(init_dir, train, out, save_every=10, callbacks=[InterruptAt(23)], **SETTINGS)
    assert not (out / "model").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("checkpoint-")) == [
        "checkpoint-10", "checkpoint-20"]
    with pytest.raises(ValueError, match="other settings"):  # a checkpoint resumes only with its own settings
        run_sft(init_dir, train, out, save_every=10, **{**SETTINGS, "lr": 1e-3})
    resumed = run_sft(init_dir, train, out, save_every=10, **SETTINGS)
    assert not resumed.skipped and resumed.resumed_from == 20
    assert resumed.steps == full.steps
    log_steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert log_steps == list(range(1, full.steps + 1))  # steps 21-23 of the killed run are not duplicated
    # the Trainer restores RNG, optimizer and scheduler and skips the batches seen: same end as without a kill
    assert resumed.losses == pytest.approx(full.losses, rel=1e-4, abs=1e-5)
    a, b = load_file(str(full.model_dir / "model.safetensors")), load_file(str(out / "model" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_bad_inputs_fail_before_any_work(init_dir, tmp_path):
    from datasets import Dataset

    out = tmp_path / "never"
    with pytest.raises(ValueError, match="empty"):
        run_sft(init_dir, Dataset.from_dict({"messages": []}), out)
    with pytest.raises(ValueError, match="no 'messages' column"):
        run_sft(init_dir, Dataset.from_dict({"text": ["hello"]}), out)
    bad = Dataset.from_dict({"messages": [chat(1, 2), [{"role": "user", "content": "Compute 1 + 1."}]]})
    with pytest.raises(ValueError, match="row 1 has no assistant turn"):
        run_sft(init_dir, bad, out)
    with pytest.raises(ValueError, match="unknown role"):
        run_sft(init_dir, Dataset.from_dict({"messages": [[{"role": "bot", "content": "x"}]]}), out)
    with pytest.raises(FileNotFoundError, match="not found"):
        run_sft(tmp_path / "no_such_model", make_dataset([(1, 2)]), out)
    assert not out.exists()


def test_wandb_offline_run_under_out_dir(init_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # conftest disables W&B; the environment wins over wandb_mode
    out = tmp_path / "stage"
    result = run_sft(init_dir, make_dataset(split_pairs()[0][:32]), out, wandb_mode="offline",
                     **{**SETTINGS, "epochs": 1.0})
    assert result.steps == 2
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    assert b"train/loss" in runs[0].read_bytes()


def test_a_template_without_generation_markers_trains_the_reply_only(tiny_qwen_dir, tmp_path):
    """Qwen2.5's ChatML template has no {% generation %} markers: one-reply chats go through TRL's
    prompt-completion format, so the labels are the reply and its <|im_end|>, nothing of the prompt."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    train_pairs, _ = split_pairs()
    capture = CaptureBatch()
    result = run_sft(tiny_qwen_dir, make_dataset(train_pairs[:32]), tmp_path / "qwen_sft", callbacks=[capture],
                     **{**SETTINGS, "epochs": 1.0})
    assert result.steps == 2 and (result.model_dir / "config.json").exists()
    tok = AutoTokenizer.from_pretrained(str(tiny_qwen_dir))
    for ids, labels in zip(capture.batch["input_ids"].tolist(), capture.batch["labels"].tolist()):
        text = tok.decode([t for t, lab in zip(ids, labels) if lab != -100])
        assert text.startswith("<think>") and "<|im_end|>" in text, text
        assert "Compute" not in text and "<|im_start|>user" not in text
    two_turns = Dataset.from_dict({"messages": [chat(1, 2) + chat(3, 4)]})
    with pytest.raises(ValueError, match="row 0: .* no \\{% generation %\\} markers"):
        run_sft(tiny_qwen_dir, two_turns, tmp_path / "qwen_two", **SETTINGS)
