from __future__ import annotations

import pytest
import torch

from r1lib.models import PRESETS, build_model, build_tokenizer, count_parameters, load_model, save_model


def test_tokenizer_roundtrip_after_reload(tiny_model_dir):
    from transformers import AutoTokenizer

    from r1lib.models import build_tokenizer  # noqa: F401  (the fixture built it)

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = ["Compute 12 + 7. <think> 12 + 7 = 19 </think> <answer> 19 </answer>",
             "Wait, let me check 所以 the answer: 3 × 4 = 12 ✓", "", "   spaces  and\nnewlines\t"]
    for t in texts:
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == t
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>" and tok.padding_side == "left"


def test_reloaded_tokenizer_tokenizes_identically(tiny_model_dir):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    a = AutoTokenizer.from_pretrained(tiny_model_dir)
    b = PreTrainedTokenizerFast(tokenizer_file=str(tiny_model_dir / "tokenizer.json"))
    for t in ["Solve for x: 3x + 5 = 20.", "Using the numbers [44, 19, 35], create an equation that equals 98."]:
        assert a(t, add_special_tokens=False)["input_ids"] == b(t, add_special_tokens=False)["input_ids"]


def test_chat_template_marks_assistant_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    enc = tok.apply_chat_template([{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}],
                                  return_assistant_tokens_mask=True, return_dict=True)
    mask = enc["assistant_masks"]
    trained = tok.decode([i for i, m in zip(enc["input_ids"], mask) if m])
    assert trained == "2<|end|>"


def test_model_save_load_same_logits(tiny_model_dir, tmp_path):
    model, tok = load_model(tiny_model_dir, device="cpu")
    assert model.config.model_type == "llama"
    ids = tok("Compute 3 + 4.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a = model(ids).logits
    save_model(model, tok, tmp_path / "copy")
    model2, _ = load_model(tmp_path / "copy", device="cpu")
    with torch.no_grad():
        b = model2(ids).logits
    assert torch.allclose(a, b)


def test_presets_sizes():
    tok = build_tokenizer(["a b c"] * 10, vocab_size=300)
    sizes = {name: count_parameters(build_model(name, tok)) for name in ("nano", "tiny", "small")}
    assert sizes["nano"] < sizes["tiny"] < sizes["small"]
    assert set(PRESETS) >= {"nano", "tiny", "small", "medium"}


def test_load_model_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_model(tmp_path / "nope" / "base_model")


def test_every_digit_is_its_own_token_and_survives_a_reload(tmp_path):
    from transformers import AutoTokenizer

    from r1lib.models import build_model, build_tokenizer, save_model

    texts = ["Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. 目前 8162"] * 200 + ["Compute 123456789 + 99."] * 50
    tok = build_tokenizer(texts, vocab_size=320)
    pieces = tok.convert_ids_to_tokens(tok("so far 8162 and 386")["input_ids"])
    digits = [p for p in pieces if any(ch.isdigit() for ch in p)]
    assert digits == list("8162386")                      # no merged digit groups, no space glued to a digit
    save_model(build_model("nano", tok), tok, tmp_path / "m")
    again = AutoTokenizer.from_pretrained(tmp_path / "m")
    for text in texts[::50] + ["<think> 17 - 8 - 1 = 8 </think> <answer> 4676 </answer>"]:
        assert again(text)["input_ids"] == tok(text)["input_ids"]
        assert again.decode(again(text)["input_ids"]) == text
