"""The RL engine under ``accelerate launch``: 1 process, 2-process DDP on CPU (gloo), DeepSpeed ZeRO-2 (GRPO and
PPO with its critic engine) and ZeRO-3 (GRPO).

Each test launches ``accelerate launch --config_file experiments/accelerate/<x>.yaml -m r1lib train-rl``
(through :func:`r1lib.launch.launch_rl`) on a tiny config and the ``tiny_model_dir`` model, as a user
would, and checks what the processes wrote. These are subprocess tests (each pays ~10-20 s of imports
and process-group start-up; the first DeepSpeed run also JIT-compiles DeepSpeed's shm_comm op, ~60 s).
Deselect them with ``-m "not distributed"``; they run in the default ``make test``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from conftest import write_tiny_config
from r1lib.config import ConfigError, config_to_dict, load_config
from r1lib.launch import LAUNCH_CONFIG_FILE, LAUNCH_INFO_FILE, LaunchError, accelerate_command, launch_rl, run_rl

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ACCEL_DIR = Path(__file__).resolve().parents[1] / "experiments" / "accelerate"
STEPS = 4
# Rewards with a spread on an untrained model (the overlong penalty varies with the completion's
# length), so that advantages and gradients are non-zero and the checksums below are meaningful.
# share_prefix: the scoring passes run the shared prompt prefix once (a second forward with a cache) under DDP and
# DeepSpeed too.
RL_TINY = (f"rl: {{steps: {STEPS}, batch_size: 8, num_generations: 4, mini_batches: 2, max_new_tokens: 8, "
           "sampler: hf, lr: 0.001, checkpoint_every: 2, eval_every: 100, eval_k: 2, eval_limit: 2, share_prefix: true, "
           "rewards: {accuracy: 1.0, format: 1.0, overlong_penalty: {weight: 1.0, max_len: 6, buffer: 6}}}")
EVAL_TINY = "eval: {max_new_tokens: 8}"
WALL_TIME_KEYS = {"time", "step_time", "gen_time", "tokens_per_s", "train_seconds", "eval/seconds"}


def subprocess_env() -> dict[str, str]:
    """Offline, no W&B, one thread per process (the machine has 2 cores and runs 2 processes)."""
    return {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def step_lines(metrics_path: Path) -> list[dict]:
    """The per-step lines of metrics.jsonl (not the eval/* lines)."""
    lines = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    return [r for r in lines if "loss" in r]


def launch(tmp_path: Path, model: Path, accel_file: str, *, timeout: float, **kw) -> tuple[Path, str]:
    cfg = write_tiny_config(tmp_path, "dist", RL_TINY, EVAL_TINY)
    out = tmp_path / "out"
    lines: list[str] = []
    try:
        launch_rl(cfg, init_model=model, out_dir=out, accelerate_config=ACCEL_DIR / accel_file,
                  env=subprocess_env(), echo=lines.append, timeout=timeout, **kw)
    except LaunchError as err:  # show the processes' own traceback, not only ours
        pytest.fail(str(err))
    return out, "".join(lines)


def check_run(out: Path, log: str, *, world: int, checkpoints: tuple[int, ...] = (2, 4)) -> dict:
    """What every launch must have produced; returns launch.json."""
    info = json.loads((out / LAUNCH_INFO_FILE).read_text())
    assert info["num_processes"] == world
    for rank in range(world):  # every process started, finished all steps, and says so
        assert f"[train-rl process {rank}/{world}] distributed_type={info['distributed_type']}" in log
        assert re.search(rf"\[train-rl process {rank}/{world}\] finished: {STEPS} steps", log), log[-3000:]
    rows = step_lines(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    for r in rows:
        bad = {k: v for k, v in r.items() if not (isinstance(v, (int, float)) and math.isfinite(v))}
        assert not bad, f"non-finite metrics at step {r['step']}: {bad}"
    assert any(r["reward/std"] > 0 for r in rows), "no reward spread: the test would not exercise gradients"
    assert (out / "policy" / "config.json").is_file() and (out / "policy" / "model.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"step_{s:08d}" for s in checkpoints]
    # DDP / ZeRO-2 replicas stay identical iff gradients were averaged across the processes.
    sums = re.findall(r"\] finished: .*?weights_checksum=([-+0-9.eE]+)", log)
    assert len(sums) == world and len(set(sums)) == 1, sums
    return info


def policy_changed(model_dir: Path, policy_dir: Path) -> bool:
    from r1lib.models import load_model

    a, _ = load_model(model_dir, device="cpu")
    b, _ = load_model(policy_dir, device="cpu")
    sb = b.state_dict()
    return any(not torch.equal(v.float(), sb[k].float()) for k, v in a.state_dict().items())


def test_accelerate_command_shape(tmp_path):
    """The command is accelerate's launcher running ``-m r1lib train-rl`` with our arguments, in order."""
    cmd = accelerate_command("exp.yaml", init_model="m", out_dir="o", accelerate_config="a.yaml", num_processes=2,
                             overrides={"rl.steps": 3, "rl.rewards": {"accuracy": 1.0}}, resume=False)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[3:] == ["--config_file", "a.yaml", "--num_processes", "2", "--main_process_port", "0",
                       "-m", "r1lib", "train-rl", "exp.yaml", "--init", "m", "--out", "o",
                       "--set", "rl.steps=3", "--set", 'rl.rewards={"accuracy": 1.0}', "--no-resume"]
    with pytest.raises(ValueError, match="num_processes"):
        accelerate_command("exp.yaml", init_model="m", out_dir="o", num_processes=0)


def test_run_rl_trains_in_process_unless_the_experiment_launches(tmp_path, monkeypatch):
    """Without ``launch.accelerate_config`` notebook 01's ``run_rl`` is ``train_rl`` in the notebook's process; a
    missing accelerate config is an error naming the field, before anything is written."""
    import r1lib.training.rl as rl_mod

    calls = []
    monkeypatch.setattr(rl_mod, "train_rl", lambda cfg, **kw: calls.append(kw) or "in-process")
    cfg = load_config(write_tiny_config(tmp_path, "dist", RL_TINY))
    assert run_rl(cfg, init_model="m", out_dir=tmp_path / "o", resume=False) == "in-process"
    assert calls == [{"init_model": "m", "out_dir": tmp_path / "o", "resume": False, "progress": "bar"}]
    bad = load_config(write_tiny_config(tmp_path, "dist", RL_TINY, "launch: {accelerate_config: nowhere.yaml}"))
    with pytest.raises(ConfigError, match="launch.accelerate_config.*nowhere.yaml"):
        run_rl(bad, init_model="m", out_dir=tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_launch_failure_reports_log_tail(tmp_path, tiny_model_dir):
    """A failing launch raises LaunchError carrying the child's own error message (here: a bad override)."""
    cfg = write_tiny_config(tmp_path, "dist", RL_TINY, EVAL_TINY)
    with pytest.raises(LaunchError) as exc:
        launch_rl(cfg, init_model=tiny_model_dir, out_dir=tmp_path / "out",
                  accelerate_config=ACCEL_DIR / "cpu_single.yaml", overrides=["rl.bach_size=8"],
                  env=subprocess_env(), echo=lambda line: None, timeout=120)
    assert exc.value.returncode != 0
    assert "rl.bach_size" in str(exc.value) and "did you mean" in str(exc.value)
    assert (tmp_path / "out" / "train_rl.log").is_file()


def test_single_process_through_notebook_01s_call(tmp_path, tiny_model_dir, monkeypatch):
    """``run_rl`` (notebook 01) with ``launch.accelerate_config`` set: it launches the processes on the resolved
    config and reads the run back as the in-process ``train_rl`` would have returned it."""
    cfg = load_config(write_tiny_config(tmp_path, "dist", RL_TINY, EVAL_TINY,
                                        f"launch: {{accelerate_config: {ACCEL_DIR / 'cpu_single.yaml'}}}"))
    for key, value in subprocess_env().items():
        monkeypatch.setenv(key, value)
    lines: list[str] = []
    out = tmp_path / "out"
    res = run_rl(cfg, init_model=tiny_model_dir, out_dir=out, echo=lines.append)
    log = "".join(lines)
    info = check_run(out, log, world=1)
    assert config_to_dict(load_config(out / LAUNCH_CONFIG_FILE)) == config_to_dict(cfg)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert res.steps == STEPS and [r["step"] for r in res.history] == list(range(1, STEPS + 1))
    assert res.final_eval == {k: v for k, v in rows[-1].items() if k.startswith("eval/")} and res.final_eval
    assert res.train_seconds == res.history[-1]["train_seconds"] > 0 and res.policy_path == out / "policy"
    assert info["distributed_type"] == "NO"
    assert (out / "checkpoints" / "step_00000004" / "pytorch_model.bin").is_file()  # accelerate's plain layout
    assert policy_changed(tiny_model_dir, out / "policy")


def test_ddp_two_processes_on_cpu(tmp_path, tiny_model_dir):
    out, log = launch(tmp_path, tiny_model_dir, "ddp_cpu_2proc.yaml", timeout=400)
    info = check_run(out, log, world=2)
    assert info["distributed_type"] == "MULTI_CPU" and info["backend"] == "gloo"
    ckpt = out / "checkpoints" / "step_00000004"
    assert (ckpt / "random_states_0.pkl").is_file() and (ckpt / "random_states_1.pkl").is_file()  # both ranks saved
    assert policy_changed(tiny_model_dir, out / "policy")


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed")
def test_deepspeed_zero2_two_processes_on_cpu_and_resume(tmp_path, tiny_model_dir):
    """ZeRO-2 over 2 CPU processes, then a second launch with more steps resumes from its DeepSpeed checkpoint.

    Generous timeout: a fresh machine JIT-compiles DeepSpeed's shm_comm op first (~60 s).
    """
    out, log = launch(tmp_path, tiny_model_dir, "deepspeed_zero2_cpu.yaml", num_processes=2, timeout=600)
    info = check_run(out, log, world=2)
    assert info["distributed_type"] == "DEEPSPEED" and info["deepspeed_zero_stage"] == 2
    ckpt = out / "checkpoints" / "step_00000004"
    # DeepSpeed's own checkpoint layout (engine.save_checkpoint via accelerate), ZeRO-2 optimizer shards per rank.
    assert (ckpt / "pytorch_model" / "mp_rank_00_model_states.pt").is_file()
    assert sorted(p.name for p in (ckpt / "pytorch_model").glob("*optim_states.pt")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    assert not (ckpt / "pytorch_model.bin").exists()
    assert policy_changed(tiny_model_dir, out / "policy")

    lines: list[str] = []
    launch_rl(write_tiny_config(tmp_path, "dist", RL_TINY, EVAL_TINY), init_model=tiny_model_dir, out_dir=out,
              accelerate_config=ACCEL_DIR / "deepspeed_zero2_cpu.yaml", num_processes=2,
              overrides={"rl.steps": STEPS + 2}, env=subprocess_env(), echo=lines.append, timeout=600)
    log2 = "".join(lines)
    assert f"resuming from {ckpt}" in log2
    assert [r["step"] for r in step_lines(out / "metrics.jsonl")] == list(range(1, STEPS + 3))
    assert len(re.findall(rf"finished: {STEPS + 2} steps", log2)) == 2
    assert os.path.isdir(out / "checkpoints" / f"step_{STEPS + 2:08d}" / "pytorch_model")


# A checkpoint after step 3 of 4, and a reference reset at step 2 only: the resumed step 4 scores with the
# reference restored from the checkpoint (the policy after step 2, not the initial model), so a reference, critic
# or optimizer state that did not survive the checkpoint changes step 4's metrics and the final weights.
RESUME_OVERRIDES = {"rl.checkpoint_every": 3, "rl.ref_reset_every": 2}


def printed_checksums(log: str) -> list[str]:
    return re.findall(r"\] finished: .*?weights_checksum=([-+0-9.eE]+)", log)


def resume_matches_uninterrupted(tmp_path: Path, model: Path, out: Path, accel_file: str, overrides: dict) -> str:
    """Copy the uninterrupted run's step-3 checkpoint and log into a fresh folder, resume there to step 4 with the
    same launch, and require the same per-step metrics (wall times aside), evaluation and weights. Returns the log."""
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(out / "checkpoints" / "step_00000003", resumed / "checkpoints" / "step_00000003")
    shutil.copy(out / "metrics.jsonl", resumed / "metrics.jsonl")
    lines: list[str] = []
    try:
        launch_rl(write_tiny_config(tmp_path, "dist", RL_TINY, EVAL_TINY), init_model=model, out_dir=resumed,
                  accelerate_config=ACCEL_DIR / accel_file, num_processes=2, overrides=overrides,
                  env=subprocess_env(), echo=lines.append, timeout=600)
    except LaunchError as err:
        pytest.fail(str(err))
    log = "".join(lines)
    assert f"resuming from {resumed / 'checkpoints' / 'step_00000003'}" in log

    def rows(path: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k not in WALL_TIME_KEYS}
                for line in path.read_text().splitlines()]

    assert rows(resumed / "metrics.jsonl") == rows(out / "metrics.jsonl")
    return log


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed")
def test_deepspeed_zero3_grpo_two_processes_gathers_saves_and_resumes(tmp_path, tiny_model_dir):
    """GRPO under ZeRO-3 over 2 CPU processes: sampling from gathered weights (rollouts, the main-process
    evaluation), a sharded reference that is reset and checkpointed, a whole saved policy, and a resume from the
    step-3 checkpoint that ends where the uninterrupted run did."""
    from transformers import AutoModelForCausalLM

    from r1lib.launch import weights_checksum

    out, log = launch(tmp_path, tiny_model_dir, "deepspeed_zero3_cpu.yaml", num_processes=2, timeout=600,
                      overrides=RESUME_OVERRIDES)
    info = check_run(out, log, world=2, checkpoints=(3, 4))
    assert info["distributed_type"] == "DEEPSPEED" and info["deepspeed_zero_stage"] == 3
    shards = out / "checkpoints" / "step_00000004" / "pytorch_model"
    assert sorted(p.name for p in shards.glob("*model_states.pt")) == [  # parameters sharded: one file per rank
        "zero_pp_rank_0_mp_rank_00_model_states.pt", "zero_pp_rank_1_mp_rank_00_model_states.pt"]
    # policy/ is the whole model: every tensor has the initial model's shape, and its checksum is the one both
    # processes computed from their gathered shards.
    saved = AutoModelForCausalLM.from_pretrained(out / "policy")
    init = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert {k: v.shape for k, v in saved.state_dict().items()} == {k: v.shape for k, v in init.state_dict().items()}
    assert printed_checksums(log) == [weights_checksum(saved)] * 2
    assert weights_checksum(saved) != weights_checksum(init)

    log2 = resume_matches_uninterrupted(tmp_path, tiny_model_dir, out, "deepspeed_zero3_cpu.yaml", RESUME_OVERRIDES)
    assert printed_checksums(log2) == printed_checksums(log)


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed is not installed")
def test_deepspeed_zero2_ppo_two_processes_critic_engine_and_resume(tmp_path, tiny_model_dir):
    """PPO under ZeRO-2 over 2 CPU processes: the critic is a DeepSpeed engine of its own (own optimizer state
    shards in ``critic/``), it learns (values move off the zero-initialised head), the policy replicas stay equal,
    and a resume from the step-3 checkpoint ends where the uninterrupted run did."""
    overrides = {**RESUME_OVERRIDES, "rl.algorithm": "ppo"}
    out, log = launch(tmp_path, tiny_model_dir, "deepspeed_zero2_cpu.yaml", num_processes=2, timeout=600,
                      overrides=overrides)
    info = check_run(out, log, world=2, checkpoints=(3, 4))
    assert info["distributed_type"] == "DEEPSPEED" and info["deepspeed_zero_stage"] == 2
    critic = out / "checkpoints" / "step_00000004" / "critic"
    assert sorted(p.name for p in critic.glob("*optim_states.pt")) == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    head = torch.load(critic / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)["module"]
    assert head["value_head.weight"].abs().sum() > 0  # zero at the start: the critic's optimizer stepped
    rows = step_lines(out / "metrics.jsonl")
    assert rows[0]["ppo/value_mean"] == 0.0 and rows[-1]["ppo/value_mean"] != 0.0
    assert all(math.isfinite(r["value_loss"]) for r in rows)
    assert policy_changed(tiny_model_dir, out / "policy")

    log2 = resume_matches_uninterrupted(tmp_path, tiny_model_dir, out, "deepspeed_zero2_cpu.yaml", overrides)
    assert printed_checksums(log2) == printed_checksums(log)
