"""Peer check: r1lib's GRPO loss and its gradients equal TRL ``GRPOTrainer``'s on one fixed batch.

Both sides score the same completions with the same weights:

- r1lib: :func:`r1lib.training.rl.sequence_logprobs` + :func:`r1lib.algorithms.losses.policy_loss`;
- TRL 1.16: ``GRPOTrainer._compute_loss(model, inputs)``, the function its training step calls, fed the
  dict its generation step produces (prompt/completion ids and masks, advantages, old and reference
  per-token log-probs).

The batch is built so that every term of the loss is active: advantages positive, negative and zero;
completions of different lengths (right padding, masked); old log-probs off the current ones so that the
clip bites on some tokens (asserted); reference log-probs from a *different* model so the k3 KL is
non-zero (asserted). Prompts all have the same token length, so there is no left padding: r1lib passes
``position_ids = cumsum(mask) - 1`` and TRL passes none (``arange``); these agree only without left
padding (see ``sequence_logprobs``).

Aggregations compared (ours <-> TRL ``loss_type``): ``sequence`` <-> ``grpo``, ``token`` <-> ``bnpo`` (equal
on one process), ``dr_grpo`` <-> ``dr_grpo`` with ``max_tokens = max_completion_length``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

# One import of trl for the whole module (~9 s of imports); skip the module cleanly without it.
trl = pytest.importorskip("trl", reason="trl is not installed: the TRL peer check (GRPOTrainer) needs it")
from datasets import Dataset  # noqa: E402  (installed with trl)
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from r1lib.algorithms.losses import policy_loss  # noqa: E402
from r1lib.models import load_model  # noqa: E402
from r1lib.prompts import r1_zero_prompt  # noqa: E402
from r1lib.training.rl import sequence_logprobs  # noqa: E402

TOL = 1e-5
EPSILON = 0.2
MAX_COMPLETION = 16                                   # TRL max_completion_length = our dr_grpo max_tokens
LENGTHS = [9, 4, 12, 1, 7, 12]                        # completion lengths (T = 12; right-padded)
ADVANTAGES = [1.0, -0.7, 0.0, 1.3, -1.5, 0.4]         # positive, negative and zero


def _perturb(model: torch.nn.Module, std: float, seed: int) -> None:
    """Add seeded Gaussian noise to every parameter in place (makes logits non-uniform / models differ)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models are overhead-bound: one torch thread is faster, and much faster on a busy machine."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def fixed(tiny_model_dir: Path) -> dict[str, Any]:
    """The fixed batch: inputs TRL's ``_compute_loss`` takes, plus the policy weights both sides load."""
    policy, tok = load_model(tiny_model_dir, device="cpu")
    # A freshly initialised model is almost uniform (logits ~0); noise gives it real, varied log-probs.
    _perturb(policy, 0.05, seed=1)
    policy_state = {k: v.clone() for k, v in policy.state_dict().items()}

    # Prompts of one token length (the most common one): no left padding on either side.
    texts = [r1_zero_prompt(f"Compute {a} + {b}.") for a in range(30) for b in range(30)]
    ids = tok(texts)["input_ids"]
    common = Counter(len(i) for i in ids).most_common(1)[0][0]
    chosen = [i for i in ids if len(i) == common][: len(LENGTHS) // 2]
    assert len(chosen) == len(LENGTHS) // 2
    rows = [chosen[k // 2] for k in range(len(LENGTHS))]  # two completions per prompt
    prompt_ids = torch.tensor(rows)
    prompt_mask = torch.ones_like(prompt_ids)

    # Completions: random non-special tokens, right-padded with the pad id, masked.
    g = torch.Generator().manual_seed(0)
    n_special = len(tok.all_special_ids)
    T = max(LENGTHS)
    completion_ids = torch.full((len(LENGTHS), T), tok.pad_token_id, dtype=torch.long)
    completion_mask = torch.zeros((len(LENGTHS), T), dtype=torch.long)
    for r, n in enumerate(LENGTHS):
        completion_ids[r, :n] = torch.randint(n_special + 1, len(tok), (n,), generator=g)
        completion_mask[r, :n] = 1
    assert not (completion_ids[completion_mask.bool()] == tok.pad_token_id).any()

    with torch.no_grad():
        cur, _ = sequence_logprobs(policy, prompt_ids, prompt_mask, completion_ids, completion_mask)
        # "old" = the sampling policy of an earlier step: off the current log-probs by up to +-0.6 nats,
        # so ratios leave [0.8, 1.2] on some tokens and the clip is exercised.
        old = cur + (torch.rand(cur.shape, generator=g) * 1.2 - 0.6)
        ref_model = load_model(tiny_model_dir, device="cpu")[0]
        ref_model.load_state_dict(policy_state)
        _perturb(ref_model, 0.05, seed=2)  # a different reference model: KL != 0
        ref, _ = sequence_logprobs(ref_model, prompt_ids, prompt_mask, completion_ids, completion_mask)
    maskf = completion_mask.float()
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": torch.tensor(ADVANTAGES),
              "old_per_token_logps": old * maskf, "ref_per_token_logps": ref * maskf,
              "num_items_in_batch": completion_mask.sum()}  # read by TRL's dapo/cispo losses only
    prompts = tok.batch_decode(chosen)
    return {"dir": tiny_model_dir, "tok": tok, "state": policy_state, "inputs": inputs, "prompts": prompts}


def _policy(fixed: dict[str, Any]) -> torch.nn.Module:
    model = load_model(fixed["dir"], device="cpu")[0]
    model.load_state_dict(fixed["state"])
    return model.train()


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def r1lib_loss(fixed: dict[str, Any], aggregation: str, beta: float) -> tuple[Any, dict[str, torch.Tensor]]:
    """Our loss (PolicyLossOutput) and parameter gradients on the fixed batch."""
    model = _policy(fixed)
    x = fixed["inputs"]
    logp, _ = sequence_logprobs(model, x["prompt_ids"], x["prompt_mask"], x["completion_ids"], x["completion_mask"])
    out = policy_loss(logp, x["old_per_token_logps"], x["advantages"], x["completion_mask"], epsilon=EPSILON,
                      beta=beta, ref_logp=x["ref_per_token_logps"], aggregation=aggregation,
                      max_tokens=MAX_COMPLETION)
    out.loss.backward()
    return out, _grads(model)


def trl_loss(fixed: dict[str, Any], loss_type: str, beta: float, out_dir: Path, *, bias_correction_kl: bool = False
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, list[float]]]:
    """TRL GRPOTrainer's loss, gradients and logged metrics on the fixed batch (CPU, fp32, no training loop).

    ``use_bias_correction_kl`` is off: TRL 1.16 defaults it to True (DeepSeek-V3.2: the k3 KL is multiplied
    by the importance ratio), which is not GRPO as in DeepSeekMath / R1 (paper Eq. 1-2), where the KL term
    is plain k3. r1lib implements the paper; see test_trl_default_kl_bias_correction_differs.
    """
    def dummy_reward(completions: list[str], **kwargs: Any) -> list[float]:
        return [0.0] * len(completions)

    args = GRPOConfig(output_dir=str(out_dir), loss_type=loss_type, beta=beta, epsilon=EPSILON,
                      max_completion_length=MAX_COMPLETION, num_generations=2, per_device_train_batch_size=2,
                      gradient_accumulation_steps=1, temperature=1.0, bf16=False, gradient_checkpointing=False,
                      use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, seed=0,
                      use_bias_correction_kl=bias_correction_kl)
    trainer = GRPOTrainer(model=_policy(fixed), reward_funcs=[dummy_reward], args=args,
                          train_dataset=Dataset.from_list([{"prompt": p} for p in fixed["prompts"]]),
                          processing_class=fixed["tok"])
    model = trainer.model.train()  # _compute_loss reads mode "train" from model.training
    # Trainer sets this per optimizer step inside its training loop and _compute_loss divides the loss by
    # it; one micro-batch per optimizer step (gradient_accumulation_steps=1) -> 1.
    trainer.current_gradient_accumulation_steps = 1
    loss = trainer._compute_loss(model, dict(fixed["inputs"]))
    loss.backward()
    return loss.detach(), _grads(model), {k: list(v) for k, v in trainer._metrics["train"].items()}


CASES = [  # (ours, TRL loss_type, beta)
    ("sequence", "grpo", 0.001),   # the paper's beta; our default aggregation
    ("sequence", "grpo", 0.04),    # TRL's old default beta: the KL term weighs more
    ("sequence", "grpo", 0.0),     # no reference model at all
    ("dr_grpo", "dr_grpo", 0.04),
    ("token", "bnpo", 0.04),
]


@pytest.mark.parametrize("aggregation, loss_type, beta", CASES)
def test_loss_and_gradients_match_trl(fixed: dict[str, Any], tmp_path: Path, aggregation: str, loss_type: str,
                                      beta: float) -> None:
    ours, our_grads = r1lib_loss(fixed, aggregation, beta)
    theirs, their_grads, metrics = trl_loss(fixed, loss_type, beta, tmp_path)

    # The batch exercises the clip and (with beta) a non-zero KL; checked on both sides.
    assert float(ours.clip_fraction) > 0.05
    assert metrics["clip_ratio/region_mean"][-1] == pytest.approx(float(ours.clip_fraction), abs=1e-6)
    assert float(ours.kl) > 1e-3
    if beta:
        assert metrics["kl"][-1] == pytest.approx(float(ours.kl), abs=TOL)

    assert abs(float(ours.loss.detach()) - float(theirs)) < TOL, (float(ours.loss.detach()), float(theirs))
    assert set(our_grads) == set(their_grads) and len(our_grads) > 0
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in our_grads.values()))
    assert total > 1e-3, "gradients are ~0: the comparison would be vacuous"
    worst = max((float((our_grads[n] - their_grads[n]).abs().max()), n) for n in our_grads)
    assert worst[0] < TOL, f"max |grad diff| {worst[0]:.3g} in {worst[1]}"


def test_cases_are_distinguishable(fixed: dict[str, Any]) -> None:
    """The fixed batch separates the variants by far more than TOL, so each match above means something."""
    seq_small = float(r1lib_loss(fixed, "sequence", 0.001)[0].loss.detach())
    seq_big = float(r1lib_loss(fixed, "sequence", 0.04)[0].loss.detach())
    tok = float(r1lib_loss(fixed, "token", 0.04)[0].loss.detach())
    dr = float(r1lib_loss(fixed, "dr_grpo", 0.04)[0].loss.detach())
    values = [seq_small, seq_big, tok, dr]
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1:]) > 100 * TOL, values


def test_trl_default_kl_bias_correction_differs(fixed: dict[str, Any], tmp_path: Path) -> None:
    """TRL's default ``use_bias_correction_kl=True`` weights the KL by the ratio: a different objective
    from the paper's (and ours). Pinned here so a change of TRL's default or of our KL shows up."""
    ours, our_grads = r1lib_loss(fixed, "sequence", 0.04)
    theirs, their_grads, _ = trl_loss(fixed, "grpo", 0.04, tmp_path, bias_correction_kl=True)
    x = fixed["inputs"]
    maskf = x["completion_mask"].float()
    with torch.no_grad():
        logp, _ = sequence_logprobs(_policy(fixed), x["prompt_ids"], x["prompt_mask"], x["completion_ids"],
                                    x["completion_mask"])
        d = x["ref_per_token_logps"] - logp
        kl = (torch.exp(d) - d - 1) * maskf
        ratio = torch.exp(logp - x["old_per_token_logps"])
        # Hand-computed difference of the two objectives: beta * sequence-mean of (ratio - 1) * kl.
        expected = 0.04 * (((ratio - 1) * kl).sum(-1) / maskf.sum(-1)).mean()
    assert float(theirs) - float(ours.loss.detach()) == pytest.approx(float(expected), abs=1e-6)
    assert abs(float(expected)) > 1e-5
    assert max(float((our_grads[n] - their_grads[n]).abs().max()) for n in our_grads) > 100 * TOL
