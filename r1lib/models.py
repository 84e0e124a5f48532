"""Tokenizer and model presets: the embedded "DeepSeek-V3-Base" analogue, and loading real checkpoints.

Two scales, one code path: ``load_model`` takes any Hugging Face causal-LM folder or hub id (Qwen2.5,
Llama, ...) as well as the folders that :func:`save_model` writes for the tiny models built here.

Why ``LlamaConfig`` and not ``Qwen2Config`` for the tiny model: with ``model_type == "qwen2"``,
transformers' ``AutoTokenizer`` silently swaps our custom tokenizer for ``Qwen2Tokenizer`` and the
tokenization changes after a reload (docs/dependencies.md §2). With ``llama`` the saved
``tokenizer.json`` is used as is.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

# Special tokens of the embedded tokenizer. <|end|> ends a turn / document and is the EOS token.
PAD, BOS, END = "<|pad|>", "<|bos|>", "<|end|>"
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, END, SYSTEM, USER, ASSISTANT]

# A chat template with {% generation %} markers so that TRL's assistant-only loss works in the SFT
# stages (cold start, distillation). <|end|> sits inside the markers: the model learns to stop.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] }}{{ '<|end|>' }}{% endgeneration %}"
    "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a Llama-architecture model. Parameter counts are for a 1,024-token vocabulary."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 512


# nano: tests only. tiny: the default base model (pretrains in minutes on 2 CPU cores).
# small / medium: teacher and student sizes for the distillation notebooks.
PRESETS: dict[str, ModelPreset] = {
    "nano": ModelPreset(64, 128, 2, 4, 2),                # ~0.14M parameters
    "tiny": ModelPreset(128, 384, 4, 4, 2),               # ~0.9M
    "small": ModelPreset(256, 768, 6, 8, 4),              # ~5.0M
    "medium": ModelPreset(512, 1408, 6, 8, 4),            # ~18.2M
}


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024, model_max_length: int = 512,
                    split_digits: bool = True):
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Byte-level: every string round-trips, including the Chinese connectives of the corpus.
    Left padding, because generation pads prompts on the left.

    ``split_digits``: every digit is its own token (`` 386`` -> `` ``, ``3``, ``8``, ``6``), as in Llama and
    Qwen tokenizers. Column arithmetic reads and writes one digit
    at a time; with BPE-merged digit groups ("38", "6") the tiny model must learn every group's digits
    separately, and in our calibration the column style's accuracy fell from 97% to 28%.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=None))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
                         if split_digits else byte_level)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=END, pad_token=PAD, unk_token=None,
                                 additional_special_tokens=[SYSTEM, USER, ASSISTANT],
                                 model_max_length=model_max_length, padding_side="left")
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_model(preset: str | ModelPreset, tokenizer, seed: int = 0):
    """A freshly initialised ``LlamaForCausalLM`` of the given preset, sized to ``tokenizer``."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[preset]
    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_hidden_layers, num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads, max_position_embeddings=preset.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, rope_theta=10000.0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=True)
    return model


def count_parameters(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


# Qwen2.5's chat template, reduced to what our chats use (no tools, no default system prompt): ChatML without
# {% generation %} markers, as in the real checkpoint.
QWEN_CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")

# Shapes of Qwen2.5 checkpoints (their config.json) for random-weight stand-ins: "0.5b" is Qwen2.5-0.5B's
# architecture (494M parameters with its 151,936-token vocabulary), "tiny" a 2-layer model for CPU tests.
QWEN_SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=None),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936),
}


def build_random_qwen(out_dir: str | os.PathLike, shape: str = "tiny", *, seed: int = 0,
                      tokenizer_vocab: int = 400, max_positions: int = 1024) -> Path:
    """Save a randomly initialised ``Qwen2ForCausalLM`` with a Qwen-family tokenizer built locally, a stand-in for a
    Qwen2.5 checkpoint where nothing can be downloaded (the recipes' CPU tests, the GPU check).

    The tokenizer: byte-level BPE trained on the synthetic corpus, single digits, ``<|endoftext|>`` as pad and EOS,
    ``<|im_start|>`` / ``<|im_end|>`` ChatML turns, no BOS, right padding; it reloads as Qwen2's tokenizer. ``shape``
    is a key of :data:`QWEN_SHAPES`; a shape with a ``vocab_size`` keeps the real embedding size (the tokenizer
    uses its first ids), so that FLOPs and memory are the real model's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from r1lib.corpus import build_corpus

    if shape not in QWEN_SHAPES:
        raise ValueError(f"unknown Qwen shape {shape!r}; choose one of {sorted(QWEN_SHAPES)}")
    docs = build_corpus(300, mix={"addition": 1.0, "subtraction": 1.0}, seed=0)
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    bpe.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe.train_from_iterator([d.text for d in docs], trainer=trainers.BpeTrainer(
        vocab_size=tokenizer_vocab, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                  additional_special_tokens=special[1:], padding_side="right",
                                  model_max_length=max_positions)
    tok.chat_template = QWEN_CHAT_TEMPLATE
    dims = dict(QWEN_SHAPES[shape])
    dims["vocab_size"] = dims["vocab_size"] or len(tok)
    cfg = Qwen2Config(**dims, max_position_embeddings=max_positions, tie_word_embeddings=True,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    out = Path(out_dir)
    Qwen2ForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def save_model(model, tokenizer, path: str | os.PathLike) -> Path:
    """Save a plain Hugging Face folder (safetensors + tokenizer) that transformers and vLLM load.

    Written to a sibling temporary folder and renamed into place, so an interrupted save never leaves
    a half-written model where a good one was.
    """
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp-save")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    old = path.with_name(path.name + ".old-save")
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)
    return path


def resolve_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_model(path: str | os.PathLike, *, dtype: str = "float32", device: str = "auto"):
    """Load ``(model, tokenizer)`` from a local folder or a hub id (offline: local folders only).

    A missing local folder gives a clear error instead of a hub lookup traceback.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = Path(path)
    is_hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) is not None
    if not p.exists() and not is_hub_id:
        raise FileNotFoundError(f"model folder not found: {path} (train the base model first: notebooks/00_base_model.ipynb)")
    if p.exists() and not (p / "config.json").exists():
        raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except OSError as err:  # hub id while offline, or not a checkpoint
        raise FileNotFoundError(f"could not load {path!r} locally or from the hub: {err}") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
    model.to(resolve_device(device))
    return model, tokenizer
