"""Shared fixtures. Tests run offline and without W&B (see also the Makefile)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data next to the repo (or $R1LIB_SHARED_DATA); None in a user's fresh clone."""
    env = os.environ.get("R1LIB_SHARED_DATA")
    d = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return d if d.is_dir() else None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved, randomly initialised 'nano' Llama model with a BPE tokenizer trained on task text."""
    from r1lib.models import build_model, build_tokenizer, save_model
    from r1lib.prompts import r1_zero_prompt

    texts = [r1_zero_prompt(f"Compute {a} + {b}.") + f" <think> {a} + {b} = {a + b} </think> <answer> {a + b} </answer>"
             for a in range(30) for b in range(0, 30, 3)]
    tok = build_tokenizer(texts, vocab_size=300)
    model = build_model("nano", tok, seed=0)
    out = tmp_path_factory.mktemp("models") / "nano"
    save_model(model, tok, out)
    return out


def write_tiny_config(tmp_path: Path, name: str, *sections: str) -> Path:
    """A tiny experiment YAML whose results and runs live under ``tmp_path`` (for notebook smoke runs).

    ``sections`` are extra YAML lines (e.g. "eval: {k: 2}") appended to the shared tiny base.
    """
    cfg = tmp_path / "tiny.yaml"
    lines = [f"name: {name}", f"results_dir: {tmp_path / 'results'}", f"stages_dir: {tmp_path / 'results'}",
             f"runs_dir: {tmp_path / 'runs'}", "notebooks: []",
             "tasks: {mix: {addition: 1.0, subtraction: 1.0}, difficulty: [1, 2], n_train: 8, n_test: 4, n_harder: 4}",
             "model: {preset: nano, device: cpu}", "tracking: {wandb_mode: disabled}", *sections]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


# Qwen2.5's chat template, reduced to what our chats use (no tools, no default system prompt): ChatML without
# {% generation %} markers, as in the real checkpoint.
QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer ``Qwen2ForCausalLM`` with a Qwen-family tokenizer built locally: byte-level
    BPE, single digits, ``<|endoftext|>`` as pad and EOS, ``<|im_start|>``/``<|im_end|>`` ChatML turns, no BOS,
    right padding; it reloads as ``Qwen2Tokenizer``. It stands in for a Qwen2.5 checkpoint in the recipes' CPU
    tests (no download), so chat templates, padding side, dtype and stop strings take the real-scale path."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from r1lib.corpus import build_corpus

    docs = build_corpus(300, mix={"addition": 1.0, "subtraction": 1.0}, seed=0)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    bpe.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator([d.text for d in docs], trainer=trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=special[1:], padding_side="right", model_max_length=1024)
    tok.chat_template = QWEN_CHAT_TEMPLATE
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      bos_token_id=None)
    import torch

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("models") / "qwen2_tiny"
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def run_notebook(notebook: Path, out: Path, parameters: dict):
    """Execute ``notebook`` with papermill (repository root as cwd) into ``out``; return the executed notebook."""
    papermill = pytest.importorskip("papermill")
    import nbformat

    papermill.execute_notebook(str(notebook), str(out), kernel_name="python3", cwd=str(REPO_ROOT),
                               progress_bar=False, parameters=parameters)
    return nbformat.read(out, as_version=4)
