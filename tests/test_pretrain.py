from __future__ import annotations

import pytest
import torch

from r1lib.models import build_model, build_tokenizer
from r1lib.pretrain import batch_indices, lr_lambda, pack_documents, pretrain


def _setup():
    texts = [f"Compute {a} + {b}. <think> {a} + {b} = {a + b} </think> <answer> {a + b} </answer>"
             for a in range(20) for b in range(20)]
    tok = build_tokenizer(texts, vocab_size=300)
    chunks = pack_documents(tok, texts, seq_len=32)
    return tok, chunks


def test_pack_and_batches_are_deterministic():
    tok, chunks = _setup()
    assert chunks.shape[1] == 32 and chunks.dtype == torch.long
    assert torch.equal(batch_indices(len(chunks), 8, 5, seed=1), batch_indices(len(chunks), 8, 5, seed=1))
    assert not torch.equal(batch_indices(len(chunks), 8, 5, seed=1), batch_indices(len(chunks), 8, 6, seed=1))
    f = lr_lambda(warmup=10, total=100)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)


def test_pretraining_lowers_loss(tmp_path):
    tok, chunks = _setup()
    model = build_model("nano", tok, seed=0)
    with torch.no_grad():
        before = model(input_ids=chunks[:16], labels=chunks[:16]).loss.item()
    pretrain(model, chunks, steps=30, batch_size=8, lr=5e-3, warmup_steps=3, run_dir=tmp_path, checkpoint_every=10,
             progress=False)
    with torch.no_grad():
        after = model(input_ids=chunks[:16], labels=chunks[:16]).loss.item()
    assert after < before - 1.0


def test_resume_after_interrupt_gives_identical_weights(tmp_path):
    tok, chunks = _setup()
    kw = dict(steps=12, batch_size=8, lr=5e-3, warmup_steps=2, checkpoint_every=4, progress=False, seed=3)
    ref = build_model("nano", tok, seed=0)
    pretrain(ref, chunks, run_dir=tmp_path / "a", **kw)

    crashed = build_model("nano", tok, seed=0)
    with pytest.raises(KeyboardInterrupt):
        pretrain(crashed, chunks, run_dir=tmp_path / "b", interrupt_at=6, **kw)  # killed after step 6
    resumed = build_model("nano", tok, seed=0)  # a fresh process would rebuild the model
    result = pretrain(resumed, chunks, run_dir=tmp_path / "b", **kw)
    assert result.resumed_from == 4  # the last checkpoint before the interrupt
    for (name, a), (_, b) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
