"""Safety of the RL engine: kill -9 and resume gives the uninterrupted run's result; a NaN loss and an
empty batch stop training with a TrainingError naming the step and leave the last good checkpoint;
a bad config or model path gives a one-line error from the CLI.

The kill test runs ``python -m r1lib train-rl`` in subprocesses (it must be killed for real); the
others run the engine in this process on the ``tiny_model_dir`` model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import r1lib.training.rl as rl_mod
from conftest import write_tiny_config
from r1lib.config import load_config
from r1lib.sampling import Completion
from r1lib.training.rl import RLTrainer, TrainingError

REPO = Path(__file__).resolve().parents[1]
REWARDS = "rewards: {accuracy: 1.0, format: 1.0, overlong_penalty: {weight: 1.0, max_len: 6, buffer: 6}}"
WALL_TIME_KEYS = {"time", "step_time", "gen_time", "tokens_per_s", "train_seconds", "eval/seconds"}


def tiny_rl_config(tmp_path: Path, steps: int, checkpoint_every: int, max_new_tokens: int = 8) -> Path:
    """A tiny RL config with a reward spread on an untrained model (so the weights really move)."""
    return write_tiny_config(
        tmp_path, "resume",
        f"rl: {{steps: {steps}, batch_size: 8, num_generations: 4, mini_batches: 2, "
        f"max_new_tokens: {max_new_tokens}, sampler: hf, lr: 0.001, beta: 0.01, checkpoint_every: {checkpoint_every}, "
        f"keep_checkpoints: 20, eval_every: 100, eval_k: 2, eval_limit: 2, {REWARDS}}}",
        "eval: {max_new_tokens: 8}")


def subprocess_env() -> dict[str, str]:
    # One thread in every run: the twin and the resumed run must do the same float operations.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
            "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def train_cmd(cfg: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "r1lib", "train-rl", str(cfg), "--init", str(model), "--out", str(out)]


def step_rows(out: Path) -> dict[int, dict]:
    """Per-step metrics lines (not eval lines) by step, wall-time keys removed."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k not in WALL_TIME_KEYS} for r in rows if "loss" in r}


def policy_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def completed_checkpoints(out: Path) -> list[int]:
    d = out / "checkpoints"
    if not d.is_dir():
        return []
    return sorted(int(p.name.split("_")[1]) for p in d.iterdir()
                  if p.name.startswith("step_") and (p / rl_mod.TRAINER_STATE).exists())


@pytest.mark.slow
def test_kill9_and_resume_matches_uninterrupted_run(tmp_path, tiny_model_dir):
    steps = 10
    cfg = tiny_rl_config(tmp_path, steps=steps, checkpoint_every=2, max_new_tokens=12)
    killed_out, twin_out = tmp_path / "killed", tmp_path / "twin"
    # The uninterrupted twin runs alongside the run that gets killed (one thread each).
    twin = subprocess.Popen(train_cmd(cfg, tiny_model_dir, twin_out), env=subprocess_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = subprocess.Popen(train_cmd(cfg, tiny_model_dir, killed_out), env=subprocess_env(), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not completed_checkpoints(killed_out) and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=60) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    saved = completed_checkpoints(killed_out)
    assert saved and 2 <= saved[-1] < steps, saved
    assert not (killed_out / "policy").exists(), "killed after it finished: the test did not interrupt anything"

    resumed = subprocess.run(train_cmd(cfg, tiny_model_dir, killed_out), env=subprocess_env(), cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming from {killed_out / 'checkpoints'}" in resumed.stdout
    twin_log = twin.communicate(timeout=600)[0]
    assert twin.returncode == 0, twin_log[-3000:]

    got, want = step_rows(killed_out), step_rows(twin_out)
    assert sorted(got) == sorted(want) == list(range(1, steps + 1))
    for s in range(1, steps + 1):  # every step, not only the last, and every key of each line
        assert got[s] == want[s], f"step {s} differs: " + str(
            {k: (got[s].get(k), want[s].get(k)) for k in set(got[s]) | set(want[s]) if got[s].get(k) != want[s].get(k)})
    assert want[steps]["reward/std"] > 0 and want[steps]["kl"] != 0  # the run did learn something
    a, b = policy_weights(killed_out / "policy"), policy_weights(twin_out / "policy")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    init = policy_weights(tiny_model_dir)
    assert any(not torch.equal(init[k], a[k]) for k in a)


def _trainer(cfg_path: Path, model: Path, out: Path) -> RLTrainer:
    return RLTrainer(load_config(cfg_path), init_model=model, out_dir=out)


def _snapshot(trainer: RLTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.policy.state_dict().items()}


def test_nan_loss_stops_with_last_good_checkpoint(tmp_path, tiny_model_dir, monkeypatch):
    cfg = tiny_rl_config(tmp_path, steps=5, checkpoint_every=2)
    out = tmp_path / "out"
    trainer = _trainer(cfg, tiny_model_dir, out)
    real_policy_loss = rl_mod.policy_loss

    def nan_on_third_update(*args, **kwargs):
        res = real_policy_loss(*args, **kwargs)
        if trainer.step == 2:  # the 3rd update (2 done): a NaN loss on every mini-batch
            return dataclasses.replace(res, loss=res.loss * float("nan"))
        return res

    monkeypatch.setattr(rl_mod, "policy_loss", nan_on_third_update)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    optim_before: dict[int, int] = {}

    def on_step(step: int, metrics: dict) -> None:
        snapshots[step] = _snapshot(trainer)
        optim_before[step] = sum(int(s.get("step", 0)) for s in trainer.optimizer.state_dict()["state"].values())

    with pytest.raises(TrainingError) as exc:
        trainer.train(on_step=on_step)
    msg = str(exc.value)
    assert trainer.step == 2 and sorted(snapshots) == [1, 2]
    assert "NaN" in msg and "step 3" in msg and "step_00000002" in msg, msg
    # No update from the NaN step: the weights in memory are the step-2 weights, the optimizer took no step.
    now = _snapshot(trainer)
    assert all(torch.equal(now[k], snapshots[2][k]) for k in now)
    assert sum(int(s.get("step", 0)) for s in trainer.optimizer.state_dict()["state"].values()) == optim_before[2]
    assert sorted(step_rows(out)) == [1, 2]  # nothing logged for the failed step

    # The last good checkpoint is there and loads into a fresh trainer with exactly those weights.
    assert completed_checkpoints(out) == [2]
    fresh = _trainer(cfg, tiny_model_dir, out)
    assert fresh.latest_checkpoint() == out / "checkpoints" / "step_00000002"
    fresh.load_checkpoint(fresh.latest_checkpoint())
    assert fresh.step == 2
    loaded = _snapshot(fresh)
    assert all(torch.equal(loaded[k], snapshots[2][k]) for k in loaded)


class _EmptyAt:
    """Wraps a sampler: at training step ``at`` every completion comes back empty (0 tokens)."""

    def __init__(self, inner, trainer: RLTrainer, at: int) -> None:
        self.inner, self.trainer, self.at = inner, trainer, at

    def generate(self, prompts, params):
        out = self.inner.generate(prompts, params)
        if self.trainer.step != self.at:
            return out
        return [[Completion(text="", token_ids=[], finish_reason="length") for _ in group] for group in out]

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_empty_batch_stops_naming_the_step(tmp_path, tiny_model_dir):
    cfg = tiny_rl_config(tmp_path, steps=3, checkpoint_every=1)
    out = tmp_path / "out"
    trainer = _trainer(cfg, tiny_model_dir, out)
    trainer._sampler = _EmptyAt(trainer.sampler(), trainer, at=1)
    with pytest.raises(TrainingError) as exc:
        trainer.train()
    msg = str(exc.value)
    assert trainer.step == 1
    assert "step 2" in msg and "empty" in msg and "step_00000001" in msg, msg
    assert completed_checkpoints(out) == [1] and sorted(step_rows(out)) == [1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "r1lib", "train-rl", *args], env=subprocess_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_missing_model_and_bad_config_give_clear_errors(tmp_path, tiny_model_dir):
    cfg = tiny_rl_config(tmp_path, steps=2, checkpoint_every=1)
    out = str(tmp_path / "out")
    missing = tmp_path / "no_such_model"
    not_a_model = tmp_path / "empty_dir"
    not_a_model.mkdir()
    cases = [
        ((str(cfg), "--init", str(missing), "--out", out), str(missing)),
        ((str(cfg), "--init", str(not_a_model), "--out", out), "no config.json"),
        ((str(tmp_path / "nope.yaml"), "--init", str(tiny_model_dir), "--out", out), str(tmp_path / "nope.yaml")),
        ((str(cfg), "--init", str(tiny_model_dir), "--out", out, "--set", "rl.bach_size=8"), "rl.batch_size"),
        ((str(cfg), "--init", str(tiny_model_dir), "--out", out, "--set", "rl.batch_size=7"), "must divide"),
    ]
    for args, needle in cases:
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert needle in res.stderr and res.stderr.startswith("error: "), (args, res.stderr)
        assert "Traceback" not in res.stderr + res.stdout
    assert not Path(out).exists()  # nothing was started


def test_gradient_checkpointing_trains_the_same_policy(tmp_path, tiny_model_dir):
    """rl.gradient_checkpointing recomputes activations in the backward pass: the same rollouts, losses and updated
    weights as without it (to float tolerance), while the samplers still generate with a cache (eval mode)."""
    runs = {}
    for gc in (False, True):
        (tmp_path / str(gc)).mkdir()
        cfg = load_config(tiny_rl_config(tmp_path / str(gc), steps=2, checkpoint_every=100),
                          {"rl.gradient_checkpointing": gc})
        trainer = RLTrainer(cfg, init_model=tiny_model_dir, out_dir=tmp_path / str(gc) / "run")
        assert trainer.policy.is_gradient_checkpointing is gc
        res = trainer.train()
        runs[gc] = (res.history, {k: v.detach().clone() for k, v in trainer.policy.state_dict().items()})
    (h0, w0), (h1, w1) = runs[False], runs[True]
    for a, b in zip(h0, h1):
        assert a["reward/mean"] == b["reward/mean"] and a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    for k in w0:
        assert torch.allclose(w0[k], w1[k], atol=1e-6), k


@pytest.mark.parametrize("mini_batches, aggregation, algorithm", [
    (2, "sequence", "grpo"), (1, "token", "grpo"), (1, "dr_grpo", "grpo"), (2, "sequence", "ppo")])
def test_length_sorted_micro_batches_give_the_same_update(tmp_path, tiny_model_dir, mini_batches, aggregation,
                                                           algorithm):
    """rl.micro_batches splits each mini-batch into length-sorted passes with accumulated gradients, each weighted by
    its share of rows (tokens for the token means): the same rollouts, metrics and update as one pass, to float
    rounding. One mini-batch also checks the on-policy old log-probs filled pass by pass; PPO also the critic's
    gradients (its value loss is a token mean, weighted by the pass's share of tokens)."""
    runs = {}
    for micro in (1, 2):
        (tmp_path / str(micro)).mkdir()
        cfg = load_config(tiny_rl_config(tmp_path / str(micro), steps=1, checkpoint_every=100),
                          {"rl.micro_batches": micro, "rl.mini_batches": mini_batches,
                           "rl.loss_aggregation": aggregation, "rl.algorithm": algorithm})
        trainer = RLTrainer(cfg, init_model=tiny_model_dir, out_dir=tmp_path / str(micro) / "run")
        grads: list[dict[str, torch.Tensor]] = []  # the accumulated gradient at every optimizer step
        step = trainer.optimizer.step
        named = list(trainer.policy.named_parameters())
        if trainer.critic is not None:
            assert algorithm == "ppo"
            named += [(f"critic.{n}", p) for n, p in trainer.critic.named_parameters()]

        def recording_step(*a, _step=step, _grads=grads, _named=named, **kw):
            _grads.append({n: p.grad.detach().clone() for n, p in _named if p.grad is not None})
            return _step(*a, **kw)

        trainer.optimizer.step = recording_step
        res = trainer.train()
        runs[micro] = (res.history[0], grads)
    (h1, g1), (h2, g2) = runs[1], runs[2]
    assert h1["reward/mean"] == h2["reward/mean"] and h1["length/mean"] == h2["length/mean"]
    keys = ("loss", "surrogate", "kl", "clip_fraction", "grad_norm", "entropy")
    for key in keys + (("value_loss", "critic_grad_norm") if algorithm == "ppo" else ()):
        assert h1[key] == pytest.approx(h2[key], rel=1e-5, abs=1e-7), key
    assert len(g1) == len(g2) == mini_batches
    for a, b in zip(g1, g2):
        assert a.keys() == b.keys() and max(float(v.abs().max()) for v in a.values()) > 1e-3
        assert algorithm != "ppo" or any(n.startswith("critic.") for n in a)
        for name in a:  # (Adam would amplify rounding in near-zero gradients: compare gradients, not weights)
            scale = float(a[name].abs().max())
            assert float((a[name] - b[name]).abs().max()) <= 1e-4 * scale + 1e-9, name


def test_micro_batches_beyond_a_mini_batch_are_one_pass_per_row(tmp_path, tiny_model_dir):
    """rl.micro_batches is an upper bound: a mini-batch of 4 rows with micro_batches 8 runs 4 passes of one row."""
    cfg = load_config(tiny_rl_config(tmp_path, steps=1, checkpoint_every=1), {"rl.micro_batches": 8})
    trainer = RLTrainer(cfg, init_model=tiny_model_dir, out_dir=tmp_path / "run")
    batch = type("B", (), {"prompt_mask": torch.ones(8, 3), "completion_mask": torch.ones(8, 5)})()
    chunks = trainer._length_chunks(batch, torch.arange(4), cfg.rl.micro_batches)
    assert [len(c) for c in chunks] == [1, 1, 1, 1]
