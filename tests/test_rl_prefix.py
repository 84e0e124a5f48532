"""rl.share_prefix: the prompt prefix shared by all rows of a scoring pass goes through the model once.

The same log-probs and gradients as the plain forward, to float rounding, on left-padded R1-Zero prompts; a
fallback to the plain forward when nothing long enough is shared; and one engine step with and without it.
"""

from __future__ import annotations

import pytest
import torch

import r1lib.training.rl as rl_mod
from r1lib.config import load_config
from r1lib.prompts import r1_zero_prompt
from r1lib.rollouts import pad_rows
from r1lib.sampling import MIN_SHARED_PREFIX
from r1lib.training.rl import RLTrainer, _shared_prefix_cache, sequence_logprobs
from test_rl_resume import tiny_rl_config

QUESTIONS = ["Compute 1234 + 5678.", "Compute 98765 - 4321.", "Compute 12 + 5.", "What is 7 + 8?"]
COMPLETION = " <think> 1 + 2 = 3 </think> <answer> 3 </answer>"


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    from r1lib.models import load_model

    model, tok = load_model(tiny_model_dir, device="cpu")
    return model.train(), tok


def _batch(tok, prompts, lengths=(5, 12, 20, 9)):
    done = tok(COMPLETION)["input_ids"]
    pi, pm = pad_rows([tok(p)["input_ids"] for p in prompts], tok.pad_token_id, left=True)
    ci, cm = pad_rows([done[:n] for n in lengths[:len(prompts)]], tok.pad_token_id, left=False)
    return pi, pm, ci, cm


def _logps_and_grads(model, batch, share):
    model.zero_grad(set_to_none=True)
    lp, ent = sequence_logprobs(model, *batch, with_entropy=True, share_prefix=share)
    (lp * batch[3]).sum().backward()
    return lp.detach(), ent, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_shared_prefix_gives_the_same_logprobs_and_gradients(model_and_tok):
    model, tok = model_and_tok
    batch = _batch(tok, [r1_zero_prompt(q) for q in QUESTIONS])
    pi, pm = batch[0], batch[1]
    assert len(set(pm.sum(1).tolist())) > 1                      # left padding of different widths
    cache, k = _shared_prefix_cache(model, pi, pm)
    assert cache is not None and k >= MIN_SHARED_PREFIX and k < int(pm.sum(1).min())
    lp0, ent0, g0 = _logps_and_grads(model, batch, False)
    lp1, ent1, g1 = _logps_and_grads(model, batch, True)
    mask = batch[3].bool()
    assert float((lp0 - lp1)[mask].abs().max()) < 1e-4
    assert float((ent0 - ent1)[mask].abs().max()) < 1e-4
    assert g0.keys() == g1.keys() and len(g0) == len(list(model.parameters()))
    for name in g0:                                               # the prefix's gradient reaches every weight
        scale = float(g0[name].abs().max())
        assert float((g0[name] - g1[name]).abs().max()) <= 1e-4 * scale + 1e-8, name


def test_short_or_no_shared_prefix_falls_back(model_and_tok):
    model, tok = model_and_tok
    batch = _batch(tok, ["1 2 3 4 5 6", "Compute 9 + 9.", "<answer> 7", "think"])
    assert _shared_prefix_cache(model, batch[0], batch[1]) == (None, 0)
    one = tuple(t[:1] for t in _batch(tok, [r1_zero_prompt(QUESTIONS[0])]))
    assert _shared_prefix_cache(model, one[0], one[1]) == (None, 0)  # a single row: nothing to share
    lp0, _, _ = _logps_and_grads(model, batch, False)
    lp1, _, _ = _logps_and_grads(model, batch, True)
    assert torch.equal(lp0, lp1)


def test_engine_step_with_and_without_shared_prefix(tmp_path, tiny_model_dir, monkeypatch):
    """One GRPO step (2 mini-batches, 2 passes each): the same metrics and accumulated gradients, and the
    shared prefix is really used (in the reference pass and the training passes)."""
    shared = []
    original = rl_mod._shared_prefix_cache

    def counting(*a, **kw):
        out = original(*a, **kw)
        shared.append(out[1])
        return out

    monkeypatch.setattr(rl_mod, "_shared_prefix_cache", counting)
    runs = {}
    for share in (False, True):
        (tmp_path / str(share)).mkdir()
        cfg = load_config(tiny_rl_config(tmp_path / str(share), steps=1, checkpoint_every=100),
                                 {"rl.share_prefix": share, "rl.micro_batches": 2})
        trainer = RLTrainer(cfg, init_model=tiny_model_dir, out_dir=tmp_path / str(share) / "run")
        assert trainer.share_prefix is share
        grads: list[dict[str, torch.Tensor]] = []
        step = trainer.optimizer.step

        def recording_step(*a, _step=step, _grads=grads, _model=trainer.policy, **kw):
            _grads.append({n: p.grad.detach().clone() for n, p in _model.named_parameters() if p.grad is not None})
            return _step(*a, **kw)

        trainer.optimizer.step = recording_step
        runs[share] = (trainer.train().history[0], grads)
    assert shared and max(shared) >= MIN_SHARED_PREFIX
    (h0, g0), (h1, g1) = runs[False], runs[True]
    assert h0["reward/mean"] == h1["reward/mean"] and h0["length/mean"] == h1["length/mean"]
    for key in ("loss", "kl", "grad_norm", "entropy"):
        assert h0[key] == pytest.approx(h1[key], rel=1e-4, abs=1e-7), key
    assert len(g0) == len(g1) == 2
    for a, b in zip(g0, g1):
        for name in a:
            scale = float(a[name].abs().max())
            assert float((a[name] - b[name]).abs().max()) <= 1e-4 * scale + 1e-9, name
