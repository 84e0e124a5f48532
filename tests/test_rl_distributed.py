"""The RL engine under ``accelerate launch``: 1 process, 2-process DDP on CPU (gloo), DeepSpeed ZeRO-2.

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
from pathlib import Path

import pytest
import torch

from conftest import write_tiny_config
from r1lib.launch import LAUNCH_INFO_FILE, LaunchError, accelerate_command, launch_rl

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ACCEL_DIR = Path(__file__).resolve().parents[1] / "experiments" / "accelerate"
STEPS = 4
# Rewards with a spread on an untrained model (the overlong penalty varies with the completion's
# length), so that advantages and gradients are non-zero and the checksums below are meaningful.
RL_TINY = (f"rl: {{steps: {STEPS}, batch_size: 8, num_generations: 4, mini_batches: 2, max_new_tokens: 8, "
           "sampler: hf, lr: 0.001, checkpoint_every: 2, eval_every: 100, eval_k: 2, eval_limit: 2, "
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


def check_run(out: Path, log: str, *, world: int) -> dict:
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
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
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


def test_single_process(tmp_path, tiny_model_dir):
    out, log = launch(tmp_path, tiny_model_dir, "cpu_single.yaml", timeout=300)
    info = check_run(out, log, world=1)
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
