"""The real-scale recipes: each validates, and its first steps run on CPU with a tiny random-weight model of the
same architecture and tokenizer family (``tiny_qwen_dir``: Qwen2, ChatML template without generation markers,
no BOS, right padding) and local data files in the recipe's formats, so nothing is downloaded.

What only the recipe's real sizes and GPUs can show (accuracy, throughput) is not checked here; what breaks when
the embedded model is swapped for a Hugging Face checkpoint is: chat templates, special tokens, padding side,
dtype, stop strings, loading problems from files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1lib.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_RECIPE = REPO_ROOT / "experiments" / "qwen1_5b_r1_pipeline.yaml"


def _gsm8k_like(path: Path, n: int, offset: int) -> Path:
    """A GSM8K-shaped local file (the project's jsonl schema: id, problem, answer, solution)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        a, b = 12 + i + offset, 7 + 2 * i
        rows.append({"id": f"g{offset + i}", "problem": f"Tom has {a} apples and buys {b} more. How many apples?",
                     "answer": str(a + b), "solution": f"Tom has {a} + {b} = {a + b} apples."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cpu_sizes(tmp_path: Path, model: Path, *, n_train: int) -> dict:
    """A recipe's overrides for a CPU check: the tiny Qwen2 as the model, GSM8K-shaped local files as the problems,
    folders under ``tmp_path``, and toy RL and evaluation sizes."""
    train = _gsm8k_like(tmp_path / "data" / "gsm8k" / "train.jsonl", n_train, 0)
    test = _gsm8k_like(tmp_path / "data" / "gsm8k" / "test.jsonl", 4, 100)
    return {
        "model.path": str(model), "model.device": "cpu", "tracking.wandb_mode": "disabled",
        "runs_dir": str(tmp_path / "runs"), "results_dir": str(tmp_path / "results"),
        "stages_dir": str(tmp_path / "results"),
        "tasks.train_from": str(train), "tasks.test_from": str(test), "tasks.n_train": n_train, "tasks.n_test": 4,
        "eval.k": 2, "eval.max_new_tokens": 12,
        "rl.batch_size": 4, "rl.num_generations": 2, "rl.mini_batches": 2, "rl.max_new_tokens": 12,
        "rl.eval_every": 1, "rl.eval_k": 2, "rl.eval_limit": 2, "rl.checkpoint_every": 1,
    }


def test_pipeline_recipe_validates_with_its_real_settings():
    cfg = load_config(PIPELINE_RECIPE)
    assert cfg.model.path == "Qwen/Qwen2.5-1.5B" and cfg.model.dtype == "bfloat16"
    assert cfg.tasks.train_from == "gsm8k" and cfg.tasks.test_from == "math500"
    assert [Path(n.path).name for n in cfg.notebooks] == ["01_r1_zero_grpo.ipynb", "04_r1_pipeline.ipynb"]
    assert cfg.base_model == "Qwen/Qwen2.5-1.5B"          # a hub id stays a hub id
    assert cfg.pipeline.sft_epochs == 2 and cfg.pipeline.stage4_temperature == 0.7   # paper values
    assert cfg.rl.batch_size % cfg.rl.num_generations == 0


@pytest.mark.slow
def test_pipeline_recipe_first_steps_on_a_tiny_qwen(tmp_path, tiny_qwen_dir, monkeypatch):
    """R1-Zero for one step from the Qwen-family checkpoint, then every R1 stage for a step or two, then one row
    of the evaluation table, all with the recipe's settings except the sizes."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from r1lib import pipeline as P
    from r1lib.training.rl import train_rl

    small = {
        **_cpu_sizes(tmp_path, tiny_qwen_dir, n_train=24), "rl.steps": 1,
        "pipeline.cold_start_prompts": 4, "pipeline.cold_start_samples": 2, "pipeline.demonstrations": 4,
        "pipeline.sft_batch_size": 4, "pipeline.sft_max_length": 96, "pipeline.stage2_steps": 1,
        "pipeline.rejection_prompts": 4, "pipeline.rejection_samples": 2, "pipeline.rm_pairs": 8,
        "pipeline.stage4_steps": 2, "pipeline.if_eval_prompts": 2,
    }
    cfg = load_config(PIPELINE_RECIPE, small)
    assert cfg.model.dtype == "bfloat16" and cfg.rl.sampler == "hf"   # kept from the recipe
    assert cfg.base_model == str(tiny_qwen_dir)

    # notebook 01's call: R1-Zero from the checkpoint on the file's problems
    r1z = train_rl(cfg, init_model=cfg.base_model, out_dir=cfg.runs_path / "r1_zero", progress=False)
    assert (r1z.policy_path / "config.json").exists()
    assert json.loads((r1z.policy_path / "config.json").read_text())["model_type"] == "qwen2"

    # notebook 04's call: the four stages
    res = P.run_pipeline(cfg, base_model=cfg.base_model, r1_zero_policy=r1z.policy_path,
                         out_dir=cfg.runs_path / "r1_pipeline")
    for name in ("dev1", "dev2", "dev2_no_lc", "dev3", "reward_model", "r1"):
        assert (res.models[name] / "config.json").exists(), name
    # the cold start's demonstrations come from the file's worked solutions, in the readable format
    from datasets import load_from_disk

    rows = load_from_disk(str(cfg.runs_path / "r1_pipeline" / "dev1" / "rows"))
    demos = [r for r in rows if r["source"] == "template"]
    assert len(demos) == 4 and demos[0]["messages"][1]["content"].startswith("<think> Tom has ")
    assert res.stages["dev1"]["filter"]["sampled"] == 8
    # Dev1 onwards are Qwen2 checkpoints with the checkpoint's own chat template (no generation markers)
    for name in ("dev1", "dev3"):
        model_cfg = json.loads((res.models[name] / "config.json").read_text())
        assert model_cfg["model_type"] == "qwen2", name
    tok_cfg = json.loads((res.models["dev1"] / "tokenizer_config.json").read_text())
    assert "<|im_start|>" in (tok_cfg.get("chat_template") or (res.models["dev1"] / "chat_template.jinja").read_text())

    row = P.evaluate_checkpoint(cfg, res.models["r1"], "chat", rm=res.models["reward_model"], k=2)
    assert set(row) == {"pass_at_1", "cons_at_k", "format_rate", "language_consistency", "mean_length",
                        "reflection_rate", "instruction_following", "general_accuracy",
                        "instruction_following_and_correct", "rm_score"}
    assert all(0 <= row[k] <= 1 for k in ("pass_at_1", "format_rate", "instruction_following", "rm_score"))


def test_chat_policies_stop_at_the_templates_end_of_turn(tiny_qwen_dir, tiny_model_dir):
    """Qwen2.5's EOS (<|endoftext|>) is not its turns' end (<|im_end|>): a chat-format sampler stops at both."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from r1lib.sampling import HFSampler, end_of_turn_id

    qwen_tok = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    assert end_of_turn_id(qwen_tok) == qwen_tok.convert_tokens_to_ids("<|im_end|>") != qwen_tok.eos_token_id
    ours = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert end_of_turn_id(ours) == ours.eos_token_id            # r1lib's template ends turns with its EOS
    sampler = HFSampler(AutoModelForCausalLM.from_pretrained(tiny_qwen_dir), qwen_tok)
    assert set(sampler.eos_token_ids) == {qwen_tok.eos_token_id, qwen_tok.convert_tokens_to_ids("<|im_end|>")}


DISTILL_RECIPE = REPO_ROOT / "experiments" / "qwen1_5b_distill.yaml"


def _openr1_like(path: Path, n: int) -> Path:
    """A local file in open-r1/OpenR1-Math-220k's layout: problem, answer, generations, correctness_math_verify."""
    rows = []
    for i in range(n):
        a, b = 10 + i, 3 + i
        good = f"<think>\n{a} + {b} = {a + b}\n</think>\n\nThe answer is $\\boxed{{{a + b}}}$."
        rows.append({"problem": f"What is {a} + {b}?", "answer": str(a + b), "generations": [good, good.replace(
            f"{{{a + b}}}", f"{{{a + b + 1}}}")], "correctness_math_verify": [True, False]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_distill_recipe_validates_with_its_real_settings():
    cfg = load_config(DISTILL_RECIPE)
    assert cfg.model.path == "Qwen/Qwen2.5-Math-1.5B" and cfg.model.dtype == "bfloat16"
    assert cfg.distill.students == ["Qwen/Qwen2.5-Math-1.5B"]
    assert cfg.distill.data_from == "open-r1/OpenR1-Math-220k"
    assert cfg.distill.lr == 1e-4 and 2 <= cfg.distill.epochs <= 3          # paper: 1e-4 for 1.5B, 2-3 epochs
    assert [Path(n.path).name for n in cfg.notebooks] == ["05_distillation.ipynb"]
    zero3 = (REPO_ROOT / "experiments" / "accelerate" / "deepspeed_zero3.yaml").read_text()
    assert "zero_stage: 3" in zero3 and "r1lib distill" in DISTILL_RECIPE.read_text()


@pytest.mark.slow
def test_distill_recipe_first_steps_on_a_tiny_qwen(tmp_path, tiny_qwen_dir, monkeypatch):
    """The recipe's distillation with a tiny random-weight Qwen2 as the student and a local OpenR1-shaped file:
    the `distill` CLI (the command the ZeRO-3 launch runs in every process) trains the student, then notebook 05's
    call reuses that SFT run, runs one GRPO step on the base and evaluates every row."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from r1lib.cli import main
    from r1lib.distillation import distillation_metrics, run_distillation

    traces = _openr1_like(tmp_path / "openr1.jsonl", 12)
    small = {
        **_cpu_sizes(tmp_path, tiny_qwen_dir, n_train=8),
        "pipeline.rl_eval_problems": 2, "pipeline.rl_eval_k": 2,
        "distill.students": [str(tiny_qwen_dir)], "distill.data_from": str(traces), "distill.data_limit": 10,
        "distill.batch_size": 4, "distill.max_length": 128, "distill.seeds": [0], "distill.rl_steps": 1,
        "distill.eval_k": 2,
    }
    sets = [arg for k, v in small.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    assert main(["distill", str(DISTILL_RECIPE), *sets, "--student", str(tiny_qwen_dir), "--quiet"]) == 0
    cfg = load_config(DISTILL_RECIPE, small)
    assert cfg.model.dtype == "bfloat16" and cfg.distill.lr == 1e-4           # kept from the recipe
    data_info = json.loads((cfg.runs_path / "distillation" / "data" / "data.json").read_text())
    assert data_info["filter"] == {"traces": 20, "kept": 10, "dropped": {"unverified": 10, "no_answer": 0, "wrong": 0,
                                                                          "no_reasoning": 0, "malformed": 0}}
    sft_dir = cfg.runs_path / "distillation" / "students" / tiny_qwen_dir.name / "sft_seed0"
    assert json.loads((sft_dir / "model" / "config.json").read_text())["model_type"] == "qwen2"

    res = run_distillation(cfg, cfg.runs_path / "distillation", say=lambda _: None)
    lab = tiny_qwen_dir.name
    assert res.sft[f"{lab}/distilled"]["skipped"]                            # the CLI's run, not trained again
    assert set(res.rows) == {f"{lab}/base", f"{lab}/distilled", f"{lab}/rl_seed0"}   # no teacher: traces from a file
    m = distillation_metrics(cfg, res)
    assert m["students"][lab]["params"] > 0 and m["distill_vs_rl"]["rl_steps"] == 1
    # bad input: a file in none of the layouts is named with its row
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x"}) + "\n")
    rc = main(["distill", str(DISTILL_RECIPE), *sets, "--set", f"distill.data_from={bad}", "--set",
               f"runs_dir={tmp_path / 'runs2'}", "--student", str(tiny_qwen_dir), "--quiet"])
    assert rc == 2


@pytest.mark.slow
@pytest.mark.distributed
def test_distill_sft_under_deepspeed_zero3_on_cpu(tmp_path, tiny_qwen_dir):
    """The recipe's multi-GPU command on CPU: `accelerate launch` with DeepSpeed ZeRO-3 (2 processes, gloo) runs
    `r1lib distill`; the parameters are sharded (a model-states file per rank) and the saved student is whole and
    trained."""
    import os
    import subprocess
    import sys

    import torch
    from safetensors.torch import load_file

    traces = _openr1_like(tmp_path / "openr1.jsonl", 16)
    sets = {"model.path": str(tiny_qwen_dir), "model.device": "cpu", "model.dtype": "float32",
            "runs_dir": str(tmp_path / "runs"), "tracking.wandb_mode": "disabled",
            "distill.students": json.dumps([str(tiny_qwen_dir)]), "distill.data_from": str(traces),
            "distill.batch_size": 4, "distill.max_length": 128, "distill.epochs": 1}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO_ROOT / "experiments" / "accelerate" / "deepspeed_zero3_cpu.yaml"), "--num_processes", "2",
           "--main_process_port", "0", "-m", "r1lib", "distill", str(DISTILL_RECIPE),
           *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")], "--student", str(tiny_qwen_dir), "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[distill rank 0] finished" in proc.stdout and "[distill rank 1] finished" in proc.stdout
    out = tmp_path / "runs" / "distillation" / "students" / tiny_qwen_dir.name / "sft_seed0"
    shards = sorted(p.name for p in out.glob("checkpoints/checkpoint-*/global_step*/*model_states.pt"))
    assert shards == ["zero_pp_rank_0_mp_rank_00_model_states.pt", "zero_pp_rank_1_mp_rank_00_model_states.pt"]
    before, after = load_file(tiny_qwen_dir / "model.safetensors"), load_file(out / "model" / "model.safetensors")
    assert before.keys() == after.keys() and all(before[k].shape == after[k].shape for k in before)
    assert max((before[k].float() - after[k].float()).abs().max().item() for k in before) > 0
    assert all(torch.isfinite(t).all() for t in after.values())
