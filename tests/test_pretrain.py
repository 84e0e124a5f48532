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


def test_a_finished_run_called_again_reports_the_whole_run(tmp_path):
    """Rerunning a notebook reuses the finished pretraining: nothing is trained, and the result still says what
    the run did (its last loss, tokens and training seconds), so the report stays writable (no NaN)."""
    tok, chunks = _setup()
    kw = dict(steps=8, batch_size=8, lr=5e-3, warmup_steps=2, checkpoint_every=4, progress=False, seed=3)
    first = pretrain(build_model("nano", tok, seed=0), chunks, run_dir=tmp_path, **kw)
    again = pretrain(build_model("nano", tok, seed=0), chunks, run_dir=tmp_path, **kw)
    assert again.resumed_from == 8 and again.final_loss == first.final_loss
    assert again.tokens_seen == first.tokens_seen == 8 * 8 * 32
    assert again.seconds == pytest.approx(first.seconds, abs=0.5)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("c++") is None, reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_pretraining_trains_the_same_parameters(tmp_path):
    """``compile=True`` (``pretrain.compile``): the same run through torch.compile, the same parameters trained
    (checkpoints hold ``model``'s state), losses equal up to float rounding."""
    tok, chunks = _setup()
    kw = dict(steps=6, batch_size=8, lr=5e-3, warmup_steps=2, checkpoint_every=3, progress=False, seed=3)
    eager, compiled = build_model("nano", tok, seed=0), build_model("nano", tok, seed=0)
    a = pretrain(eager, chunks, run_dir=tmp_path / "eager", **kw)
    b = pretrain(compiled, chunks, run_dir=tmp_path / "compiled", compile=True, **kw)
    assert b.final_loss == pytest.approx(a.final_loss, rel=1e-3)
    for (name, x), (_, y) in zip(eager.state_dict().items(), compiled.state_dict().items()):
        assert torch.allclose(x, y, atol=1e-4), name
    assert (tmp_path / "compiled" / "checkpoints").exists()


def test_compile_without_a_cxx_compiler_runs_eager(tmp_path, monkeypatch):
    """No C++ compiler (a laptop without build tools): pretrain.compile warns and trains eager, not a crash."""
    import torch._inductor.cpp_builder as cpp_builder
    from torch._inductor.exc import InvalidCxxCompiler

    def no_compiler():
        raise InvalidCxxCompiler()

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    monkeypatch.setattr(torch, "compile", lambda *a, **kw: pytest.fail("torch.compile called without a compiler"))
    tok, chunks = _setup()
    with pytest.warns(UserWarning, match="pretraining runs eager"):
        res = pretrain(build_model("nano", tok, seed=0), chunks, run_dir=tmp_path, steps=2, batch_size=4, lr=1e-3,
                       warmup_steps=1, checkpoint_every=2, progress=False, compile=True)
    assert res.final_loss == res.final_loss and (tmp_path / "checkpoints").exists()


def _report(acc: dict, n: dict) -> dict:
    return {"style_accuracy": acc, "style_n": n}


def test_skill_check_reads_the_base_models_own_samples():
    from r1lib.pretrain import skill_problems

    good = _report({"direct": 0.0, "short": 0.3, "careful": 0.85}, {"direct": 1500, "short": 200, "careful": 300})
    assert skill_problems(good) == []
    never = _report({"direct": 0.0, "short": 0.3, "careful": None}, {"direct": 1500, "short": 200, "careful": 0})
    assert "never sampled the careful" in skill_problems(never)[0]
    weak = _report({"direct": 0.0, "short": 0.3, "careful": 0.4}, {"direct": 1500, "short": 200, "careful": 300})
    assert "only 40% accurate" in skill_problems(weak)[0]
    tie = _report({"direct": 0.0, "short": 0.9, "careful": 0.85}, {"direct": 1500, "short": 200, "careful": 300})
    assert skill_problems(tie) == ["the short style (90%) is as accurate as the careful style (85%)"]
    few = _report({"direct": 0.0, "short": 1.0, "careful": 0.85}, {"direct": 1500, "short": 5, "careful": 300})
    assert skill_problems(few) == []                       # 5 short samples are too few to compare


def test_base_model_report_targets():
    from r1lib.pretrain import base_model_report

    build = {"pretrain_seconds": 400.0, "params": 10, "final_loss": 0.2, "tokens_seen": 100}
    summary = {"pass@1": 0.12, "pass@16": 0.8, "k": 16, "cons@16": 0.5, "format_rate": 0.8, "reflection_rate": 0.15,
               "language_mix_rate": 0.0, "mean_length": 45.0, "truncated_fraction": 0.0, "n_examples": 128}
    styles = {"direct": {"share": 0.75, "accuracy": 0.0, "mean_length": 20.0, "n": 1536},
              "short": {"share": 0.1, "accuracy": 0.3, "mean_length": 98.0, "n": 205},
              "careful": {"share": 0.15, "accuracy": 0.8, "mean_length": 137.0, "n": 307}}
    behaviour = {"styles": styles, "facts": {"accuracy": 0.93, "n": 2000}, "aha": {"count": 0, "attempts": 3}}
    rep = base_model_report(build, summary, behaviour=behaviour, harder_summary={"pass@1": 0.01, "pass@16": 0.1, "k": 16,
                                                                                "n_examples": 64})
    assert rep["targets_met"] == {"pass_at_1_in_5_25": True, "pass_at_16_ge_4x_pass_at_1": True,
                                  "pretrain_le_420s": True, "careful_style_most_accurate": True}
    assert rep["style_share"]["careful"] == 0.15 and rep["step_fact_accuracy"] == 0.93
    assert rep["harder_pass_at_1"] == 0.01 and rep["harder_pass_at_k"] == 0.1
    slow = base_model_report({**build, "pretrain_seconds": 421.0}, {**summary, "pass@16": 0.47})
    assert not slow["targets_met"]["pretrain_le_420s"] and not slow["targets_met"]["pass_at_16_ge_4x_pass_at_1"]
