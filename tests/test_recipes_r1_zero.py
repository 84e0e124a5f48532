"""The R1-Zero recipes for real Qwen base models (experiments/qwen0_5b_r1_zero.yaml, qwen1_5b_r1_zero.yaml,
qwen_math7b_r1_zero.yaml): each validates with its real settings, and its first 2 GRPO steps run on CPU through the
command a user runs (`python -m r1lib train-rl RECIPE --init ... --out ...`), with a tiny random-weight Qwen2 built
locally (``tiny_qwen_dir``: ChatML template, no BOS, <|endoftext|> as EOS and pad) in place of the checkpoint and
GSM8K- / MATH-shaped local files in place of the hub sets; then notebook 06's evaluation call runs on the shipped
MATH-500 and AIME 2024 files.

Only the real sizes and GPUs can show accuracy and throughput; what is checked here is what breaks when the settings
meet a Hugging Face checkpoint: the recipe's keys, the pooled training sources, padding side, stop strings, the
length schedule, the reference reset, the shipped benchmarks' loading and grading."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from r1lib.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "qwen0_5b_r1_zero": "Qwen/Qwen2.5-0.5B",
    "qwen1_5b_r1_zero": "Qwen/Qwen2.5-1.5B",
    "qwen_math7b_r1_zero": "Qwen/Qwen2.5-Math-7B",
}
EVAL_SETS = ["math500", "aime24", "amc23", "gsm8k"]


def recipe_path(name: str) -> Path:
    return REPO_ROOT / "experiments" / f"{name}.yaml"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_validates_with_its_real_settings(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from r1lib.cli import main

    path = recipe_path(name)
    assert main(["validate", str(path)]) == 0                               # the command in the header
    assert f"name: {name}" in capsys.readouterr().out
    cfg = load_config(path)
    assert (cfg.model.path, cfg.model.dtype, cfg.model.device) == (RECIPES[name], "bfloat16", "cuda")
    assert cfg.base_model == RECIPES[name]                                  # a hub id stays a hub id
    assert cfg.tasks.train_from == ["gsm8k", "math"] and cfg.tasks.test_from == "math500"
    assert cfg.tasks.n_train == 7473 + 7500
    assert cfg.eval.benchmarks == EVAL_SETS
    assert (cfg.eval.temperature, cfg.eval.top_p) == (0.6, 0.95)           # paper protocol
    assert [Path(n.path).name for n in cfg.notebooks] == ["01_r1_zero_grpo.ipynb", "06_evaluation.ipynb"]
    rl = cfg.rl
    # the paper's R1-Zero values (docs/paper.md §2.2)
    assert (rl.algorithm, rl.lr, rl.beta, rl.epsilon, rl.temperature) == ("grpo", 3e-6, 0.001, 10.0, 1.0)
    assert (rl.num_generations, rl.batch_size // rl.num_generations, rl.ref_reset_every) == (16, 32, 400)
    assert rl.prompt_format == "r1_zero" and rl.rewards == {"accuracy": 1.0, "format": 1.0}
    assert cfg.sampling.stop == ["</answer>"]
    # tiles on the 8 processes of the accelerate config named in the header
    header = path.read_text().split("\nextends:")[0]
    accel = REPO_ROOT / "experiments" / "accelerate" / "deepspeed_zero2.yaml"
    assert "--config_file experiments/accelerate/deepspeed_zero2.yaml" in header and "8 GPUs" in header
    assert re.search(r"^num_processes: 8$", accel.read_text(), re.M)
    assert (rl.batch_size // rl.num_generations) % 8 == 0 and (rl.batch_size // 8) % rl.mini_batches == 0
    assert f"--init {RECIPES[name]}" in header and f"--out runs/{name}/r1_zero" in header.replace("\\\n#      ", "")
    assert "ESTIMATE" in header and "Expected wall time" in header
    # every step stays within the model's context: Qwen2.5-Math-7B has 4,096 positions
    final_cap = max([rl.max_new_tokens] + [tokens for _, tokens in rl.max_new_tokens_schedule])
    assert cfg.eval.max_new_tokens == final_cap
    if "math7b" in name:
        assert final_cap <= 3072 and not rl.max_new_tokens_schedule
    else:
        assert rl.max_new_tokens_schedule == [(0.7885, 2 * rl.max_new_tokens)]   # paper: x2 at 8,200 / 10,400


def test_train_from_list_errors_name_the_field() -> None:
    from r1lib.config import ConfigError

    for value, message in (([], "an empty list"), (["gsm8k", "gsm8k"], r"source\(s\) listed twice: gsm8k")):
        with pytest.raises(ConfigError, match=rf"field 'tasks.train_from': {message}"):
            load_config(recipe_path("qwen0_5b_r1_zero"), {"tasks.train_from": value})


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _local_training_sets(data: Path) -> None:
    """GSM8K- and MATH-shaped train files in a data directory, under the names the recipes use (gsm8k, math)."""
    _write_rows(data / "gsm8k" / "train.jsonl", [
        {"id": f"gsm8k-train-{i:04d}", "problem": f"Tom has {12 + i} apples and buys {7 + i} more. How many now?",
         "answer": str(19 + 2 * i), "solution": f"{12 + i} + {7 + i} = {19 + 2 * i}"} for i in range(6)])
    _write_rows(data / "math" / "train.jsonl", [
        {"id": f"math-train-{i:04d}", "problem": f"Simplify $\\frac{{{2 * (i + 1)}}}{{{4 * (i + 1)}}}$.",
         "answer": "\\frac{1}{2}", "solution": "Divide by the common factor: $\\boxed{\\frac{1}{2}}$.",
         "level": "Level 1", "subject": "Prealgebra"} for i in range(6)])


def _cpu_overrides(tmp_path: Path, model: Path) -> dict:
    """The recipe with CPU sizes: the tiny Qwen2, float32, 2 steps of 2 questions x G 4, short completions, the
    length switch and a reference reset inside the 2 steps, an evaluation at steps 0 and 2 on 2 MATH-500 questions."""
    return {
        "model.path": str(model), "model.device": "cpu", "model.dtype": "float32", "tracking.wandb_mode": "disabled",
        "runs_dir": str(tmp_path / "runs"), "results_dir": str(tmp_path / "results"),
        "stages_dir": str(tmp_path / "results"), "tasks.n_train": 8, "tasks.n_test": 2,
        "rl.steps": 2, "rl.batch_size": 8, "rl.num_generations": 4, "rl.mini_batches": 2,
        "rl.max_new_tokens": 6, "rl.max_new_tokens_schedule": [[0.5, 10]], "rl.ref_reset_every": 1,
        "rl.eval_every": 2, "rl.eval_k": 2, "rl.eval_limit": 2, "rl.checkpoint_every": 2, "rl.num_threads": 1,
        "eval.k": 2, "eval.limit": 2, "eval.max_new_tokens": 8, "sampling.batch_size": 8,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_first_steps_on_a_tiny_qwen(name: str, tmp_path: Path, tiny_qwen_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from r1lib.cli import main
    from r1lib.evaluation import evaluate_checkpoints, train_problems

    # `train_from: [gsm8k, math]` resolved from a local data directory, as a user without hub access would
    data = tmp_path / "data"
    _local_training_sets(data)
    monkeypatch.setenv("R1LIB_DATA_DIR", str(data))
    small = _cpu_overrides(tmp_path, tiny_qwen_dir)
    cfg = load_config(recipe_path(name), small)
    assert cfg.tasks.train_from == ["gsm8k", "math"] and cfg.rl.sampler == "hf"   # kept from the recipe
    assert (cfg.rl.lr, cfg.rl.epsilon, cfg.rl.beta) == (3e-6, 10.0, 0.001)
    pool = train_problems(cfg)
    assert len(pool) == 8 and {e.task for e in pool} == {"gsm8k", "math"}        # both sources, 8 of 12 drawn

    out = cfg.runs_path / "r1_zero"
    sets = [arg for k, v in small.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    rc = main(["train-rl", str(recipe_path(name)), *sets, "--init", str(tiny_qwen_dir), "--out", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err[-2000:]
    assert "finished: 2 steps" in printed.out
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in steps if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2]
    assert all(r["loss"] == r["loss"] for r in train_rows)                      # finite (NaN != NaN)
    assert {r["step"]: r["max_new_tokens"] for r in train_rows} == {1: 6, 2: 10}   # the length switch at half the run
    evals = [r for r in steps if any(k.startswith("eval/") for k in r)]
    assert [r["step"] for r in evals] == [0, 1, 2]            # every 2 steps, and right before the cap changes
    policy = out / "policy"
    assert json.loads((policy / "config.json").read_text())["model_type"] == "qwen2"
    tok_cfg = json.loads((policy / "tokenizer_config.json").read_text())
    assert tok_cfg["eos_token"] == "<|endoftext|>" and tok_cfg.get("bos_token") is None

    # notebook 06's call on the shipped MATH-500 and AIME 2024 files (eval.limit 2 questions x k 2)
    monkeypatch.delenv("R1LIB_DATA_DIR")
    rows = evaluate_checkpoints([str(policy)], ["math500", "aime24"], cfg)
    (row,) = rows
    for bench, first_ids in (("math500", ["test/precalculus/807.json", "test/intermediate_algebra/1994.json"]),
                             ("aime24", ["2024-I-1", "2024-I-10"])):
        records = row["details"][bench].records
        assert [r["id"] for r in records] == first_ids and [r["task"] for r in records] == [bench, bench]
        assert all(len(r["correct"]) == 2 and len(r["lengths"]) == 2 for r in records)      # k 2 samples each
        assert all(0 < n <= 8 for r in records for n in r["lengths"])                     # eval.max_new_tokens
        assert 0.0 <= row[f"{bench} pass@1"] <= 1.0


def test_r1_zero_prompts_on_a_qwen_tokenizer(tiny_qwen_dir: Path) -> None:
    """The recipes' prompt path on a Qwen tokenizer: the R1-Zero template (no chat template, no BOS token), left
    padding for batched generation, and HF generate's stop strings on byte-level BPE tokens: a completion ends right
    after the stop string, with finish_reason 'stop'."""
    from r1lib.models import load_model
    from r1lib.prompts import PromptFormat, r1_zero_prompt
    from r1lib.sampling import SamplingParams, make_sampler

    model, tok = load_model(tiny_qwen_dir, dtype="float32", device="cpu")
    assert tok.padding_side == "left" and tok.bos_token is None
    fmt = PromptFormat("r1_zero", tok)
    prompt = fmt("What is 2 + 3?")
    assert prompt == r1_zero_prompt("What is 2 + 3?") and "<|im_start|>" not in prompt
    assert fmt.stop == ("</answer>",)
    ids = tok(prompt, add_special_tokens=fmt.add_special_tokens)["input_ids"]
    assert ids[0] != tok.eos_token_id and tok.decode(ids) == prompt           # nothing prepended, lossless
    sampler = make_sampler(model, tok, backend="hf")
    free = sampler.generate([prompt], SamplingParams(temperature=1.0, max_new_tokens=16, stop=(), seed=0))[0][0].text
    # A 3-character stop string from inside that completion (not formed earlier, nor across the prompt's end: HF
    # generate's stop criteria look at prompt + completion) ends the same seeded completion right after it.
    full = prompt + free
    k = next(k for k in range(1, len(free) - 3)
             if free[k:k + 3].strip() and full.find(free[k:k + 3], len(prompt) - 2) == len(prompt) + k)
    stop = free[k:k + 3]
    cut = sampler.generate([prompt], SamplingParams(temperature=1.0, max_new_tokens=16, stop=(stop,), seed=0))[0][0]
    assert (cut.finish_reason, cut.text) == ("stop", free[: k + 3])
