"""The multi-stage DeepSeek-R1 pipeline (docs/paper.md §3, v2 Fig. 2), from the base model and the R1-Zero policy.

    base model ──SFT on cold-start traces──────────────────▶ Dev1   (stage 1: readable format)
    Dev1       ──GRPO: accuracy + format + language consist.▶ Dev2   (stage 2: reasoning-oriented RL)
    base model ──SFT on Dev2's rejection samples + general──▶ Dev3   (stage 3: the paper retrains V3-Base)
    Dev3       ──GRPO: rules; + general prompts and the    ─▶ R1     (stage 4: all scenarios, T 0.7)
                 preference reward in the final part

:func:`run_pipeline` is the stage order in one function; each stage is resumable and is skipped when its final
model exists, so rerunning notebook 04 only does what is missing. Every checkpoint is a plain Hugging Face folder.
SFT and the reward model go through TRL (``r1lib.training.sft``, ``r1lib.training.reward_model``); the RL
stages through r1lib's GRPO engine (``r1lib.training.rl``) with the chat prompt format.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1lib.tracking import atomic_write_json

#: The pipeline's checkpoints in the order of v2 Table 3, and the prompt format each one is evaluated with.
CHECKPOINTS: dict[str, str] = {"base": "r1_zero", "r1_zero": "r1_zero", "dev1": "chat", "dev2": "chat",
                               "dev3": "chat", "r1": "chat"}


@dataclass
class PipelineResult:
    """Model folders of every stage (``dev1`` ... ``r1``, ``dev2_no_lc``, ``reward_model``) and each stage's
    summary (data kept and dropped, sizes, seconds)."""

    models: dict[str, Path] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)


def _with(cfg: Any, overrides: dict[str, Any]) -> Any:
    from r1lib.ablation import _with_overrides

    return _with_overrides(cfg, overrides)


def _finished(model_dir: Path) -> bool:
    return (model_dir / "config.json").exists()


def _save_rows(rows: list[dict[str, Any]], path: Path) -> Any:
    from datasets import Dataset

    ds = Dataset.from_list(rows)
    ds.save_to_disk(str(path))
    return ds


def _sampler(cfg: Any, model_dir: Path, prompt_format: Any) -> Any:
    from r1lib.evaluation import eval_sampler

    return eval_sampler(cfg, str(model_dir), add_special_tokens=prompt_format.add_special_tokens)


def _prompt_format(name: str, model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    from r1lib.prompts import PromptFormat

    return PromptFormat(name, AutoTokenizer.from_pretrained(str(model_dir)))


def _train_prompts(cfg: Any, n: int, salt: int) -> list[Any]:
    """``n`` training problems for a data-collection pass; ``salt`` keeps passes apart (another seed of the
    train split: the prompts differ from those of other stages but never come from the test split)."""
    from r1lib.evaluation import train_problems

    return train_problems(cfg, n, seed=cfg.seed * 1000 + salt)


def _sft(cfg: Any, init_model: Path, rows: list[dict[str, Any]], out: Path, *, epochs: float) -> Any:
    from r1lib.training.sft import run_sft

    p = cfg.pipeline
    ds = _save_rows(rows, out / "rows") if not (out / "rows").exists() else None
    if ds is None:
        from datasets import load_from_disk

        ds = load_from_disk(str(out / "rows"))
    return run_sft(init_model, ds, out, epochs=epochs, lr=p.sft_lr, batch_size=p.sft_batch_size,
                   max_length=p.sft_max_length, seed=cfg.seed, wandb_mode=cfg.tracking.wandb_mode,
                   device=cfg.model.device)


def cold_start(cfg: Any, base_model: Path, r1_zero_policy: Path, out: Path) -> tuple[Path, dict[str, Any]]:
    """Stage 1 (-> Dev1): R1-Zero traces at T 1.0, filtered and rewritten into the readable format, plus
    templated demonstrations; SFT of the **base model** on them (docs/paper.md §3, stage 1)."""
    from r1lib.stage_data import demonstrations, row_table, sample_and_filter

    p, t0 = cfg.pipeline, time.perf_counter()
    summary_path = out / "stage.json"
    if _finished(out / "model") and summary_path.exists():
        return out / "model", json.loads(summary_path.read_text())
    prompts = _train_prompts(cfg, p.cold_start_prompts + p.demonstrations, salt=1)
    fmt = _prompt_format("r1_zero", r1_zero_policy)     # the R1-Zero policy answers in its own template
    rows, stats = sample_and_filter(_sampler(cfg, r1_zero_policy, fmt), prompts[: p.cold_start_prompts],
                                    n=p.cold_start_samples, temperature=1.0, max_new_tokens=cfg.rl.max_new_tokens,
                                    prompt_format=fmt, seed=cfg.seed, readable_format=False,
                                    max_per_prompt=p.samples_kept_per_prompt)
    rows += demonstrations(prompts[p.cold_start_prompts:], seed=cfg.seed)
    sft = _sft(cfg, base_model, rows, out, epochs=p.sft_epochs)
    summary = {"filter": stats.to_dict(), "rows": row_table(rows), "n_rows": len(rows),
               "sft_steps": sft.steps, "sft_train_tokens": sft.train_tokens, "seconds": time.perf_counter() - t0}
    atomic_write_json(summary_path, summary)
    return sft.model_dir, summary


def chat_rl_config(cfg: Any, steps: int, rewards: dict[str, Any], temperature: float) -> Any:
    """The experiment's RL settings for one pipeline stage: the chat format, its steps and rewards, and a small
    held-out check at its start and end only (``pipeline.rl_eval_problems`` x ``pipeline.rl_eval_k``); the
    pipeline's table is the full evaluation (:func:`evaluate_pipeline`)."""
    p = cfg.pipeline
    return _with(cfg, {"rl.steps": steps, "rl.prompt_format": "chat", "rl.rewards": rewards,
                       "rl.temperature": temperature, "rl.max_new_tokens_schedule": [], "rl.eval_every": steps,
                       "rl.checkpoint_every": steps, "rl.eval_limit": p.rl_eval_problems, "rl.eval_k": p.rl_eval_k})


def _eval_at(run_dir: Path, step: int | None = None) -> dict[str, float] | None:
    """The held-out evaluation an RL run logged at ``step`` (None: its last), to hand to a run that starts from
    the same model instead of evaluating it again."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    evals = [r for r in rows if "eval/pass@1" in r and (step is None or r.get("step") == step)]
    if not evals:
        return None
    return {k: v for k, v in evals[-1].items() if k.startswith("eval/")}


def reasoning_rl(cfg: Any, dev1: Path, out: Path, *, language_consistency: bool = True,
                 initial_eval: dict[str, float] | None = None) -> tuple[Path, dict[str, Any]]:
    """Stage 2 (-> Dev2): GRPO from Dev1 in the chat format, reward = accuracy + readable format + language
    consistency, summed (paper eq. 7); ``language_consistency=False`` is the LC ablation (v2 B.6).
    ``initial_eval``: Dev1's held-out check when another run already made it (the two arms share it)."""
    from r1lib.training.rl import train_rl

    p, t0 = cfg.pipeline, time.perf_counter()
    rewards: dict[str, Any] = {"accuracy": 1.0, "readable_format": 1.0}
    if language_consistency:
        rewards["language_consistency"] = p.lc_weight
    if not _finished(out / "policy"):
        train_rl(chat_rl_config(cfg, p.stage2_steps, rewards, 1.0), init_model=dev1, out_dir=out, progress=False,
                 initial_eval=initial_eval)
    return out / "policy", {"rewards": rewards, "steps": p.stage2_steps, "seconds": time.perf_counter() - t0}


def rejection_sft(cfg: Any, base_model: Path, dev2: Path, out: Path) -> tuple[Path, dict[str, Any]]:
    """Stage 3 (-> Dev3): several samples per training prompt from Dev2, only correct, one-language, not
    overlong, not repetitive ones kept; non-reasoning data at ``general_share``; SFT of the **base model** (the
    paper retrains V3-Base, not the RL checkpoint), ``sft_epochs`` epochs (paper: two)."""
    from r1lib.stage_data import demonstrations, mix_rows, row_table, sample_and_filter
    from r1lib.tasks.general import sft_rows

    p, t0 = cfg.pipeline, time.perf_counter()
    summary_path = out / "stage.json"
    if _finished(out / "model") and summary_path.exists():
        return out / "model", json.loads(summary_path.read_text())
    fmt = _prompt_format("chat", dev2)
    prompts = _train_prompts(cfg, p.rejection_prompts, salt=3)
    reasoning, stats = sample_and_filter(_sampler(cfg, dev2, fmt), prompts, n=p.rejection_samples, temperature=1.0,
                                         max_new_tokens=cfg.rl.max_new_tokens, prompt_format=fmt, seed=cfg.seed + 3,
                                         readable_format=True, max_per_prompt=p.samples_kept_per_prompt)
    note = None
    if not reasoning:  # nothing survived (a model that cannot solve anything yet): say so, and keep the stage going
        reasoning = demonstrations(prompts[: max(1, p.demonstrations)], seed=cfg.seed)
        note = "no sample of Dev2 survived the filters: the reasoning data are templated demonstrations only"
    n_general = max(1, round(len(reasoning) * p.general_share / (1 - p.general_share)))
    rows = mix_rows(reasoning, sft_rows(n_general, split="train", seed=cfg.seed), seed=cfg.seed)
    sft = _sft(cfg, base_model, rows, out, epochs=p.sft_epochs)
    summary = {"filter": stats.to_dict(), "rows": row_table(rows), "n_rows": len(rows), "note": note,
               "sft_steps": sft.steps, "sft_train_tokens": sft.train_tokens, "seconds": time.perf_counter() - t0}
    atomic_write_json(summary_path, summary)
    return sft.model_dir, summary


def reward_model(cfg: Any, base_model: Path, out: Path) -> tuple[Path, dict[str, Any]]:
    """The preference reward model: TRL ``RewardTrainer`` on a scalar head over the base model, trained on
    synthetic pairs (chosen: follows the instruction, one language, concise; rejected: off-topic, wrong
    language, rambling); it scores the summary only (docs/paper.md §1.4). Accuracy on held-out pairs."""
    from datasets import Dataset

    from r1lib.tasks.general import preference_pairs
    from r1lib.training.reward_model import RewardModelScorer, pair_accuracy, train_reward_model

    p, t0 = cfg.pipeline, time.perf_counter()
    summary_path = out / "stage.json"
    if _finished(out / "model") and summary_path.exists():
        return out / "model", json.loads(summary_path.read_text())
    cols = ("prompt", "chosen", "rejected")
    train = Dataset.from_list([{c: r[c] for c in cols} for r in preference_pairs(p.rm_pairs, split="train",
                                                                                 seed=cfg.seed)])
    held_out = Dataset.from_list([{c: r[c] for c in cols} for r in preference_pairs(200, split="test",
                                                                                    seed=cfg.seed)])
    res = train_reward_model(base_model, train, out, epochs=p.rm_epochs, lr=p.rm_lr, seed=cfg.seed,
                             wandb_mode=cfg.tracking.wandb_mode, device=cfg.model.device)
    summary = {"pairs": len(train), "held_out_pairs": len(held_out), "steps": res.steps,
               "held_out_accuracy": pair_accuracy(RewardModelScorer(res.model_dir), held_out),
               "seconds": time.perf_counter() - t0}
    atomic_write_json(summary_path, summary)
    return res.model_dir, summary


def all_scenario_rl(cfg: Any, dev3: Path, rm: Path, out: Path) -> tuple[Path, dict[str, Any]]:
    """Stage 4 (-> R1): GRPO from Dev3 at T 0.7. Reasoning prompts get the rule rewards (+ LC) throughout; in
    the final ``preference_fraction`` of the steps general prompts join (``stage4_general_share`` of each
    batch) with the preference reward model's score of their summary (paper: the last 400 of 1,700 steps).
    Two runs: the rule-only part, then the mixed part from its policy."""
    from r1lib.evaluation import train_problems
    from r1lib.tasks import generate_mix
    from r1lib.training.rl import train_rl

    p, t0 = cfg.pipeline, time.perf_counter()
    mixed_steps = max(1, round(p.stage4_steps * p.preference_fraction))
    rule_steps = p.stage4_steps - mixed_steps
    rules = {"accuracy": 1.0, "readable_format": 1.0, "language_consistency": p.lc_weight}
    policy = dev3
    if rule_steps > 0:
        if not _finished(out / "rules" / "policy"):
            train_rl(chat_rl_config(cfg, rule_steps, rules, p.stage4_temperature), init_model=dev3, out_dir=out / "rules",
                     progress=False)
        policy = out / "rules" / "policy"
    mixed_rewards = {**rules, "accuracy": {"weight": 1.0, "general": False},
                     "preference": {"weight": 1.0, "model": str(rm)}}
    part = chat_rl_config(cfg, mixed_steps, mixed_rewards, p.stage4_temperature)
    n_train = cfg.tasks.n_train
    n_general = round(n_train * p.stage4_general_share / (1 - p.stage4_general_share))
    train = train_problems(cfg)
    train += generate_mix({"general": 1.0}, n_general, split="train", seed=cfg.seed, difficulty=(1, 3))
    if not _finished(out / "mixed" / "policy"):
        train_rl(part, init_model=policy, out_dir=out / "mixed", progress=False, train_examples=train,
                 initial_eval=_eval_at(out / "rules") if rule_steps > 0 else None)
    return out / "mixed" / "policy", {"rule_steps": rule_steps, "mixed_steps": mixed_steps,
                                      "general_share": p.stage4_general_share, "seconds": time.perf_counter() - t0}


def run_pipeline(cfg: Any, *, base_model: str | Path, r1_zero_policy: str | Path, out_dir: str | Path) -> PipelineResult:
    """The four stages in order (plus the LC ablation and the reward model); finished stages are skipped."""
    base, r1z, out = Path(base_model), Path(r1_zero_policy), Path(out_dir)
    res = PipelineResult(models={"base": base, "r1_zero": r1z})
    res.models["dev1"], res.stages["dev1"] = cold_start(cfg, base, r1z, out / "dev1")
    res.models["dev2"], res.stages["dev2"] = reasoning_rl(cfg, res.models["dev1"], out / "dev2")
    if cfg.pipeline.lc_ablation:
        res.models["dev2_no_lc"], res.stages["dev2_no_lc"] = reasoning_rl(
            cfg, res.models["dev1"], out / "dev2_no_lc", language_consistency=False,
            initial_eval=_eval_at(out / "dev2", step=0))
    res.models["dev3"], res.stages["dev3"] = rejection_sft(cfg, base, res.models["dev2"], out / "dev3")
    res.models["reward_model"], res.stages["reward_model"] = reward_model(cfg, base, out / "reward_model")
    res.models["r1"], res.stages["r1"] = all_scenario_rl(cfg, res.models["dev3"], res.models["reward_model"],
                                                         out / "r1")
    return res


def reasoning_row(cfg: Any, model_dir: str | Path, prompt_format: str, *, k: int) -> dict[str, float]:
    """The reasoning columns of a checkpoint table (v2 Tables 3 and 5): held-out pass@1 averaged over ``k``
    samples, cons@k, format rate, language consistency, mean length in tokens, reflection-word rate, with the
    checkpoint's own ``prompt_format`` and the ``eval`` protocol (T 0.6, top-p 0.95)."""
    from r1lib.evaluation import evaluate_model, held_out

    s = evaluate_model(cfg, model_dir, held_out(cfg, "test"), k=k, ks=(1, k), keep_completions=0,
                       prompt_format=prompt_format).summary
    return {"pass_at_1": s["pass@1"], "cons_at_k": s[f"cons@{k}"], "format_rate": s["format_rate"],
            "language_consistency": s["language_consistency"], "mean_length": s["mean_length"],
            "reflection_rate": s["reflection_rate"]}


def evaluate_checkpoint(cfg: Any, model_dir: Path, prompt_format: str, *, rm: Path | None = None,
                        k: int | None = None) -> dict[str, float]:
    """One row of the v2 Table 3 analogue: held-out reasoning (pass@1, cons@k, format, language consistency,
    length, reflection) with the checkpoint's own prompt format, and the rule-checked instruction-following score
    (IF-Eval analogue, chat format, the summary after ``</think>``, 4 samples per prompt) with the reward model's
    mean score of the same replies (never used for the IF score)."""
    from r1lib.rewards import summary_of
    from r1lib.sampling import SamplingParams
    from r1lib.tasks.general import (check_constraint, check_general, instruction_following,
                                     instruction_following_set)

    k = k or cfg.pipeline.eval_k
    row = reasoning_row(cfg, model_dir, prompt_format, k=k)
    fmt = _prompt_format("chat", model_dir)
    if_set = instruction_following_set(cfg.pipeline.if_eval_prompts, split="test", seed=cfg.seed)
    sampler = _sampler(cfg, model_dir, fmt)
    e = cfg.eval
    outs = sampler.generate([fmt(ex.problem) for ex in if_set],
                            SamplingParams(temperature=e.temperature, top_p=e.top_p, max_new_tokens=64, n=4,
                                           stop=fmt.stop, seed=cfg.seed))
    replies = [(ex, summary_of(c.text)) for ex, row_ in zip(if_set, outs) for c in row_]
    n = len(replies)
    # IF-Eval scores only the verifiable instruction ("at most N words", "include X", "in English"), not whether
    # the content is right: instruction_following is that rule; general_accuracy whether the reply is also the
    # right one (the greeting, the instruction's words, the world fact); both: instruction_following_and_correct.
    row["instruction_following"] = sum(check_constraint(r, ex.meta["constraint"]) for ex, r in replies) / n
    row["general_accuracy"] = sum(check_general(r, ex) == 1.0 for ex, r in replies) / n
    row["instruction_following_and_correct"] = sum(instruction_following(r, ex) for ex, r in replies) / n
    if rm is not None:
        from r1lib.training.reward_model import RewardModelScorer

        scores = RewardModelScorer(rm).score([ex.problem for ex, _ in replies], [r for _, r in replies])
        row["rm_score"] = sum(1 / (1 + math.exp(-x)) for x in scores) / len(scores)
    return row


def evaluate_pipeline(cfg: Any, models: dict[str, Path]) -> dict[str, dict[str, float]]:
    """:func:`evaluate_checkpoint` for every checkpoint of :data:`CHECKPOINTS` present in ``models`` (in order);
    the reward model (``models["reward_model"]``) gives the ``rm_score`` column."""
    rm = models.get("reward_model")
    return {name: evaluate_checkpoint(cfg, models[name], fmt, rm=rm) for name, fmt in CHECKPOINTS.items()
            if name in models}


def lc_ablation(run_dir: str | Path) -> dict[str, Any]:
    """Stage 2 with and without the language-consistency reward (v2 B.6): final held-out pass@1 and language
    consistency of each, and the rollouts' language consistency over steps (``<run_dir>/dev2[_no_lc]``)."""
    from r1lib.tracking import read_metrics

    out: dict[str, Any] = {}
    for key, folder in (("with_lc", "dev2"), ("without_lc", "dev2_no_lc")):
        path = Path(run_dir) / folder
        if not (path / "metrics.jsonl").exists():
            continue
        df = read_metrics(path)
        ev = df.dropna(subset=["eval/pass@1"]).sort_values("step")
        tr = df.dropna(subset=["language_consistency"]).sort_values("step")
        out[key] = {"pass_at_1": float(ev["eval/pass@1"].iloc[-1]),
                    "language_consistency": float(ev["eval/language_consistency"].iloc[-1]),
                    "language_mix_rate": float(ev["eval/language_mix_rate"].iloc[-1]),
                    "rollout_steps": tr["step"].astype(int).tolist(),
                    "rollout_language_consistency": tr["language_consistency"].astype(float).tolist()}
    if "with_lc" in out and "without_lc" in out:
        out["accuracy_cost_of_lc"] = out["without_lc"]["pass_at_1"] - out["with_lc"]["pass_at_1"]
    return out


def paper_shape(table: dict[str, dict[str, float]], lc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shape v2 Table 3 and Fig. 7 report, checked on our numbers: each claim with ``holds`` and what was
    measured. Dev1 readable (language consistency and format >= 0.99); Dev2 at least as accurate as Dev1; R1
    within 5 points of Dev3's pass@1; R1 the best instruction follower; without LC, less language consistency.

    >>> t = {n: {"pass_at_1": .9, "format_rate": 1., "language_consistency": 1., "instruction_following": .5}
    ...      for n in ("base", "dev1", "dev2", "dev3", "r1")}
    >>> t["r1"]["instruction_following"] = .7
    >>> s = paper_shape(t, {"with_lc": {"language_consistency": 1.0}, "without_lc": {"language_consistency": .97}})
    >>> [k for k, v in s.items() if v["holds"]]
    ['dev1_readable', 'dev2_recovers_accuracy', 'r1_keeps_dev3_accuracy', 'r1_best_instruction_following', 'without_lc_mixes_more']
    >>> s["without_lc_mixes_more"]["measured"]
    'language consistency 1.000 with LC, 0.970 without'
    """
    d1, d2, d3, r1 = (table[n] for n in ("dev1", "dev2", "dev3", "r1"))
    best_if = max(table, key=lambda n: table[n]["instruction_following"])
    with_lc = lc.get("with_lc", {}).get("language_consistency")
    without_lc = lc.get("without_lc", {}).get("language_consistency")
    return {
        "dev1_readable": {"holds": d1["language_consistency"] >= 0.99 and d1["format_rate"] >= 0.99,
                          "measured": f"language consistency {d1['language_consistency']:.3f}, "
                                      f"format {d1['format_rate']:.3f}"},
        "dev2_recovers_accuracy": {"holds": d2["pass_at_1"] >= d1["pass_at_1"],
                                   "measured": f"pass@1 Dev1 {d1['pass_at_1']:.3f} -> Dev2 {d2['pass_at_1']:.3f}"},
        "r1_keeps_dev3_accuracy": {"holds": r1["pass_at_1"] >= d3["pass_at_1"] - 0.05,
                                   "measured": f"pass@1 Dev3 {d3['pass_at_1']:.3f} -> R1 {r1['pass_at_1']:.3f}"},
        "r1_best_instruction_following": {
            "holds": r1["instruction_following"] >= table[best_if]["instruction_following"],
            "measured": ", ".join(f"{n} {t['instruction_following']:.3f}" for n, t in table.items())},
        "without_lc_mixes_more": {
            "holds": with_lc is not None and without_lc is not None and without_lc < with_lc,
            "measured": ("not run" if with_lc is None or without_lc is None else
                         f"language consistency {with_lc:.3f} with LC, {without_lc:.3f} without")},
    }


#: Columns of the checkpoint table (v2 Table 3 analogue), in order, with their Markdown headers.
TABLE_COLUMNS: dict[str, str] = {
    "pass_at_1": "pass@1", "cons_at_k": "cons@k", "format_rate": "format", "language_consistency": "lang. consistency",
    "mean_length": "length (tokens)", "reflection_rate": "reflection", "instruction_following": "IF (rule)",
    "general_accuracy": "general correct", "rm_score": "RM score"}
_LABELS = {"base": "base", "r1_zero": "R1-Zero", "dev1": "Dev1", "dev2": "Dev2", "dev3": "Dev3", "r1": "R1"}


def table_markdown(table: dict[str, dict[str, float]]) -> str:
    """The checkpoint table as Markdown: rates in %, length in tokens, the RM score (a sigmoid) as is.

    >>> print(table_markdown({"r1": {"pass_at_1": .9, "mean_length": 138.2, "rm_score": .8}}))
    | checkpoint | pass@1 | length (tokens) | RM score |
    |---|---:|---:|---:|
    | R1 | 90.0 | 138.2 | 0.800 |
    """
    cols = [c for c in TABLE_COLUMNS if any(c in row for row in table.values())]
    lines = ["| checkpoint | " + " | ".join(TABLE_COLUMNS[c] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name, row in table.items():
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append("" if v is None else f"{v:.1f}" if c == "mean_length" else f"{v:.3f}" if c == "rm_score"
                         else f"{100 * v:.1f}")
        lines.append(f"| {_LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replies(cfg: Any, models: dict[str, Path], problem: str, *, max_new_tokens: int | None = None,
            formats: dict[str, str] | None = None) -> dict[str, str]:
    """One reply of each checkpoint of ``formats`` (default :data:`CHECKPOINTS`: name -> prompt format) present in
    ``models`` to ``problem``, in its own prompt format, at the evaluation temperature: what a reader of v2 Table 3
    would see (R1-Zero's tags vs R1's summary)."""
    from r1lib.sampling import SamplingParams

    out = {}
    for name, fmt_name in (CHECKPOINTS if formats is None else formats).items():
        if name not in models:
            continue
        fmt = _prompt_format(fmt_name, models[name])
        params = SamplingParams(temperature=cfg.eval.temperature, top_p=cfg.eval.top_p, n=1, stop=fmt.stop,
                                max_new_tokens=max_new_tokens or cfg.eval.max_new_tokens, seed=cfg.seed)
        out[name] = _sampler(cfg, models[name], fmt).generate([fmt(problem)], params)[0][0].text
    return out
