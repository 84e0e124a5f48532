"""Write the RL notebooks (01, 02, 03) without outputs. Run: python tools/make_notebooks.py

Notebooks are generated so that their code stays reviewable as Python; edit here, then regenerate.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def params(src: str):
    c = new_code_cell(src)
    c.metadata["tags"] = ["parameters"]
    return c


md, code = new_markdown_cell, new_code_cell

NB01 = [
    md("""# 01 · R1-Zero: pure RL with GRPO from the base model

DeepSeek-R1-Zero is trained from DeepSeek-V3-Base with **reinforcement learning only**: no supervised
fine-tuning, rule-based rewards, and the R1-Zero template (`../shared/notes/paper_facts.md` §1-2). Here the
"base model" is our tiny Llama pretrained in notebook 00, and the policy optimiser is r1lib's own GRPO
engine (`r1lib.training.rl`, algorithm in `r1lib.algorithms`).

One GRPO step (paper Eq. 1-3):

1. take a batch of questions; sample **G** completions each from the current policy (rollout temperature);
2. reward each completion: **accuracy** (1 if the `<answer>` matches the reference) **+ format** (1 if the
   reasoning is inside `<think>…</think>` and the answer inside `<answer>…</answer>`), same weight;
3. advantage of completion *i* = (r_i − mean(r_group)) / std(r_group): no critic, the group is the baseline;
4. maximise the clipped surrogate min(ρA, clip(ρ, 1−ε, 1+ε)A) − β·KL(π‖π_ref), with the unbiased k3 KL
   estimator, over one inner epoch of mini-batches; the reference π_ref is hard-reset to the policy every
   400 of 10,400 steps (scaled to this run's length).

The paper's numbers and ours (every deviation is also labelled in `r1lib/config.py` and the code):

| setting | paper (R1-Zero) | here (default experiment) | why |
|---|---|---|---|
| model | DeepSeek-V3-Base, 671B MoE | tiny Llama, 0.9M params (nb 00) | CPU, minutes |
| steps | 10,400 | `rl.steps` | CPU budget ≤ 10 min |
| questions × G per step | 32 × 16 = 512 | `rl.batch_size` / `rl.num_generations` | CPU budget |
| rollout temperature | 1.0 | `rl.temperature` | see the config: the tiny model is incoherent at T = 1 |
| clip ε | 10 (R1 stage 1) | `rl.epsilon` | a tiny model with few samples is unstable at ε = 10 |
| KL β, estimator | 0.001, k3 | 0.001, k3 | — |
| reference reset | every 400 of 10,400 steps | same fraction of `rl.steps` | — |
| mini-batches, inner epochs | 16, 1 | `rl.mini_batches`, 1 | — |
| max length | 32,768 → 65,536 at step 8,200 | `rl.max_new_tokens` (+ schedule) | CPU budget |
| loss aggregation | not stated | per-sequence mean (DeepSeekMath, TRL `grpo`) | documented in `r1lib.algorithms.losses` |
"""),
    params('''config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides, e.g. {"rl.steps": 20}
init_model = None                           # None: <runs_dir>/base_model (notebook 00); or an HF folder / hub id
resume = True                               # continue from the newest checkpoint of an interrupted run'''),
    code('''import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from r1lib.analysis import aha_examples, aha_rate_by_step, completions_at, eval_curve, r1_zero_report, read_eval_samples
from r1lib.config import load_config
from r1lib.rewards import accuracy_reward, format_reward
from r1lib.tasks import generate_mix
from r1lib.tasks.base import Example
from r1lib.tracking import atomic_write_json, read_metrics
from r1lib.training.rl import train_rl

cfg = load_config(config_path, overrides)
rl = cfg.rl
init_model = init_model or str(cfg.runs_path / "base_model")
run_dir = cfg.runs_path / "r1_zero"        # checkpoints, metrics.jsonl, eval samples (gitignored)
out_dir = cfg.stage_path("r1_zero")       # committed figures and metrics.json
out_dir.mkdir(parents=True, exist_ok=True)
print(f"init model: {init_model}\\nrun dir: {run_dir}\\nresults: {out_dir}")
print(f"algorithm={rl.algorithm} steps={rl.steps} batch={rl.batch_size} G={rl.num_generations} lr={rl.lr} "
      f"beta={rl.beta} eps={rl.epsilon} T={rl.temperature} mini_batches={rl.mini_batches} "
      f"max_new_tokens={rl.max_new_tokens} schedule={rl.max_new_tokens_schedule} aggregation={rl.loss_aggregation}")'''),
    md("""## The rule rewards, tried on strings

Accuracy compares the content of the last `<answer>` with the reference (numbers up to equivalence);
format asks for the template's tags in order. Both are 0/1 and summed, as in the paper (Eq. 4)."""),
    code('''ex = Example(id="demo", task="arithmetic", problem="Compute 3 + 4 * 2.", answer="11")
for text in ["<think> 4 * 2 = 8, 3 + 8 = 11 </think> <answer> 11 </answer>",
             "<think> 3 + 4 = 7, 7 * 2 = 14 </think> <answer> 14 </answer>",
             "The answer is 11.",
             "<answer> 11 </answer>"]:
    print(f"accuracy={accuracy_reward(text, ex):.0f} format={format_reward(text, ex):.0f}  {text!r}")'''),
    md("""## Train

`train_rl` runs the loop, logs every step to `metrics.jsonl` (and W&B, offline by default), evaluates the
held-out split every `rl.eval_every` steps with the paper's protocol (temperature 0.6, top-p 0.95,
`rl.eval_k` samples per question) and checkpoints every `rl.checkpoint_every` steps. Re-running this cell
after an interruption resumes from the newest checkpoint."""),
    code('''result = train_rl(cfg, init_model=init_model, out_dir=run_dir, resume=resume)
print(f"{result.steps} steps in {result.train_seconds:.0f} s; final policy: {result.policy_path}")
metrics = read_metrics(run_dir)
shutil.copyfile(run_dir / "metrics.jsonl", out_dir / "train_log.jsonl")   # the log, committed beside the figures
k = rl.eval_k'''),
    md("""## Fig. 2 analogue: held-out accuracy over training

The paper plots AIME 2024 pass@1 (16 samples) and cons@16 over 8,000+ steps (R1-Zero: 15.6% → 71.0%
pass@1, 86.7% cons@64). Ours: the held-out synthetic split."""),
    code('''fig, ax = plt.subplots(figsize=(6, 3.5))
for key, label in [("eval/pass@1", "pass@1"), (f"eval/cons@{k}", f"cons@{k}"), (f"eval/pass@{k}", f"pass@{k}")]:
    if key in metrics:
        ax.plot(*eval_curve(metrics, key), marker="o", label=label)
ax.set_xlabel("RL step"); ax.set_ylabel("held-out accuracy"); ax.set_ylim(0, 1); ax.legend()
ax.set_title("R1-Zero analogue: held-out accuracy during GRPO")
fig.tight_layout(); fig.savefig(out_dir / "fig2_accuracy.png", dpi=120); plt.show()'''),
    md("""## Fig. 3 analogue: response length over training

In the paper the average response length on the training set grows steadily (to ~10k tokens): the model
learns to think longer. `length/mean` is the training rollouts' mean; `eval/mean_length` the held-out mean."""),
    code('''fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(*eval_curve(metrics, "length/mean"), alpha=0.6, label="training rollouts (mean)")
ax.plot(*eval_curve(metrics, "eval/mean_length"), marker="o", label="held-out (mean)")
ax.plot(*eval_curve(metrics, "max_new_tokens"), linestyle="--", color="k", linewidth=1, label="max_new_tokens")
ax.set_xlabel("RL step"); ax.set_ylabel("tokens per response"); ax.legend()
ax.set_title("Response length during GRPO")
fig.tight_layout(); fig.savefig(out_dir / "fig3_length.png", dpi=120); plt.show()'''),
    md("""## Reflection words over training (v2 Fig. 9)

The share of responses containing a reflection word ("wait", "mistake", "however", "but", "retry",
"error", "verify", "wrong", "evaluate", "check"), and of held-out responses that are correct *and*
contain an aha moment (a reflection word that fixed an earlier wrong step, `r1lib.analysis`)."""),
    code('''samples = read_eval_samples(run_dir)
aha_rates = aha_rate_by_step(samples)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(*eval_curve(metrics, "reflection_rate"), alpha=0.6, label="training rollouts")
ax.plot(*eval_curve(metrics, "eval/reflection_rate"), marker="o", label="held-out")
ax.plot(list(aha_rates), list(aha_rates.values()), marker="s", label="held-out: correct with an aha fix")
ax.set_xlabel("RL step"); ax.set_ylabel("share of responses"); ax.legend()
ax.set_title("Reflection words during GRPO")
fig.tight_layout(); fig.savefig(out_dir / "reflection_words.png", dpi=120); plt.show()'''),
    md("""## Training dynamics

Reward per function, KL to the (periodically reset) reference, policy entropy, the share of tokens
whose gradient the clip removed, and the share of groups whose G rewards are all equal (no signal)."""),
    code('''keys = [k_ for k_ in ["rewards/accuracy/mean", "rewards/format/mean", "kl", "entropy", "clip_fraction",
                      "zero_spread_groups", "truncated_fraction", "step_time"] if k_ in metrics]
fig, axes = plt.subplots(2, 4, figsize=(14, 5.5))
for ax, key in zip(axes.flat, keys):
    ax.plot(*eval_curve(metrics, key)); ax.set_title(key, fontsize=9); ax.set_xlabel("step")
fig.tight_layout(); fig.savefig(out_dir / "training_dynamics.png", dpi=120); plt.show()'''),
    md("""## Completions at the start, middle and end of training

The same held-out problems, first sample at each point."""),
    code('''eval_steps = sorted(samples)
ids = [r["id"] for r in samples[eval_steps[0]][:3]]
for step in (eval_steps[0], eval_steps[len(eval_steps) // 2], eval_steps[-1]):
    display(Markdown(f"### step {step}"))
    for c in completions_at(samples, step, problem_ids=ids):
        print(f"[{'correct' if c['correct'] else 'wrong'}; gold {c['gold']}] {c['completion']}\\n")'''),
    md("""## Found "aha" examples

Correct held-out answers whose reasoning contains a reflection word that fixed an earlier wrong step."""),
    code('''test = generate_mix(cfg.tasks.mix, cfg.tasks.n_test, split="test", seed=cfg.seed, difficulty=tuple(cfg.tasks.difficulty))
problems = {e.id: e.problem for e in test}
ahas = aha_examples(samples, problems)
print(f"{len(ahas)} aha completions over {len(eval_steps)} evaluations")
for a in ahas[-4:]:
    print(f"step {a['step']} | {a['problem']} (gold {a['gold']}) | '{a['word']}': {a['wrong']} -> {a['fixed']}\\n  {a['completion']}\\n")
atomic_write_json(out_dir / "aha_examples.json", ahas[-20:])'''),
    md("""## Results and targets

`metrics.json` holds the figures (base = the evaluation at step 0, same protocol). Targets from the issue:
pass@1 +30 points absolute, format rate ≥ 95%, longer responses and more reflection words."""),
    code('''report = r1_zero_report(metrics, k=k, steps=result.steps, train_seconds=result.train_seconds)
report["aha_examples_found"] = len(ahas)
atomic_write_json(out_dir / "metrics.json", report)
rows = [("pass@1", "base_pass_at_1", "final_pass_at_1"), (f"cons@{k}", "base_cons_at_k", "final_cons_at_k"),
        ("format rate", "base_format_rate", "final_format_rate"), ("mean length (tokens)", "base_mean_length", "final_mean_length"),
        ("reflection rate", "base_reflection_rate", "final_reflection_rate")]
table = "| metric | base (step 0) | after GRPO |\\n|---|---|---|\\n" + "\\n".join(
    f"| {name} | {report[a]:.3g} | {report[b]:.3g} |" for name, a, b in rows)
display(Markdown(table + f"\\n\\n{report['steps']} steps, {report['train_seconds']:.0f} s of training."))
print(json.dumps(report["targets"], indent=1))'''),
]

NB02 = [
    md("""# 02 · Ablation: GRPO vs PPO on one engine

The paper's supplementary A.3 (v2, paper_facts §8) compares PPO and GRPO on MATH with a 16B MoE model:
*"When λ is set to 0.95 (the default value in most open-source PPO implementations), PPO performs
considerably worse than GRPO. However, with careful tuning (setting λ to 1.0), PPO's performance improves
substantially, nearing that of GRPO."* GRPO also needs no value model, which the paper counts as memory
and compute saved.

Here all three arms run on r1lib's engine with the **same** base model, tasks, rollouts, rewards,
optimizer, schedule, budget and evaluation; only the advantage estimator differs (GRPO's group baseline vs
PPO's GAE with a learned critic), plus the critic itself (a value head on a copy of the base model,
`rl.critic`). PPO puts the KL in the reward per token (classic PPO-RLHF, `rl.kl_in`), GRPO in the loss.
"""),
    params('''config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides shared by every arm, e.g. {"rl.steps": 10}
seeds = [0, 1, 2]                           # RL seeds per arm (the held-out set stays fixed)
init_model = None                           # None: <runs_dir>/base_model (notebook 00)
resume = True'''),
    code('''import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from r1lib.ablation import curves, results_dicts, run_arms, summarize
from r1lib.config import load_config
from r1lib.tracking import atomic_write_json

cfg = load_config(config_path, overrides)
init_model = init_model or str(cfg.runs_path / "base_model")
out_dir = cfg.stage_path("ablation_grpo_vs_ppo")
out_dir.mkdir(parents=True, exist_ok=True)
arms = {
    "GRPO": {"rl.algorithm": "grpo"},
    "PPO (lambda=0.95)": {"rl.algorithm": "ppo", "rl.lam": 0.95},
    "PPO (lambda=1.0)": {"rl.algorithm": "ppo", "rl.lam": 1.0},
}
print(f"steps={cfg.rl.steps} batch={cfg.rl.batch_size} G={cfg.rl.num_generations} lr={cfg.rl.lr} "
      f"critic={cfg.rl.critic} critic_lr={cfg.rl.critic_lr or 10 * cfg.rl.lr} gamma={cfg.rl.gamma} seeds={seeds}")'''),
    md("## Train every arm with every seed"),
    code('''results = run_arms(cfg, {name.replace(" ", "_").replace("(", "").replace(")", "").replace("=", ""): ov
                            for name, ov in arms.items()}, seeds, init_model=init_model,
                   runs_dir=cfg.runs_path / "ablation_grpo_vs_ppo", resume=resume, progress=False)
names = dict(zip([n.replace(" ", "_").replace("(", "").replace(")", "").replace("=", "") for n in arms], arms))
for r in results:
    r.arm = names[r.arm]
summary = summarize(results)
for arm, s in summary.items():
    print(f"{arm:18s} pass@1 {s['final_pass_at_1']['mean']:.3f} ± {s['final_pass_at_1']['std']:.3f}  "
          f"{s['sec_per_step']:.2f} s/step  peak RSS {s['peak_mem_mb']:.0f} MiB  "
          f"trainable {s['trainable_params']:,}  model copies {s['model_copies']}")'''),
    md("## Held-out pass@1 over steps (mean and spread over seeds)"),
    code('''fig, ax = plt.subplots(figsize=(6.5, 3.8))
for arm, by_step in curves(results, "eval/pass@1").items():
    steps = sorted(by_step)
    vals = [np.array(by_step[s]) for s in steps]
    mean = np.array([v.mean() for v in vals])
    ax.plot(steps, mean, marker="o", label=arm)
    ax.fill_between(steps, [v.min() for v in vals], [v.max() for v in vals], alpha=0.2)
ax.set_xlabel("RL step"); ax.set_ylabel("held-out pass@1"); ax.legend(); ax.set_title("GRPO vs PPO (band: min-max over seeds)")
fig.tight_layout(); fig.savefig(out_dir / "pass_at_1.png", dpi=120); plt.show()'''),
    md("## Cost: wall time per step, peak memory, parameters and model copies"),
    code('''fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
arm_names = list(summary)
axes[0].bar(arm_names, [summary[a]["sec_per_step"] for a in arm_names]); axes[0].set_ylabel("s / step (median)")
axes[1].bar(arm_names, [summary[a]["model_state_mb"] for a in arm_names]); axes[1].set_ylabel("model state (MiB): weights+grads+Adam, ref")
axes[2].bar(arm_names, [summary[a]["trainable_params"] for a in arm_names]); axes[2].set_ylabel("trainable parameters")
for ax in axes:
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)
fig.tight_layout(); fig.savefig(out_dir / "cost.png", dpi=120); plt.show()
table = "| arm | final pass@1 (mean ± std) | s/step | model state (MiB) | peak RSS (MiB) | trainable params | model copies |\\n|---|---|---|---|---|---|---|\\n"
table += "\\n".join(f"| {a} | {s['final_pass_at_1']['mean']:.3f} ± {s['final_pass_at_1']['std']:.3f} | {s['sec_per_step']:.2f} | "
                   f"{s['model_state_mb']:.1f} | {s['peak_mem_mb']:.0f} | {s['trainable_params']:,} | {s['model_copies']} |"
                   for a, s in summary.items())
display(Markdown(table))'''),
    md("""## The paper's finding next to ours

Paper (v2 A.3, DeepSeek-Coder-V2-Lite on MATH): PPO with λ = 0.95 clearly worse than GRPO; PPO with
λ = 1.0 nearly matches GRPO; GRPO needs no value model (one fewer model of the policy's size in memory).
Ours is printed below from the measured numbers; at this scale (a ~1M-parameter model, a few dozen steps,
3 seeds) differences smaller than the seed spread are not evidence either way."""),
    code('''g, p95, p10 = (summary[a]["final_pass_at_1"] for a in arm_names)
spread = max(s["final_pass_at_1"]["std"] for s in summary.values())
def cmp(a, b):
    d = a["mean"] - b["mean"]
    return "within the seed spread of" if abs(d) <= spread else ("above" if d > 0 else "below")
finding = (f"Ours: GRPO {g['mean']:.3f}, PPO λ=0.95 {p95['mean']:.3f} ({cmp(p95, g)} GRPO), "
           f"PPO λ=1.0 {p10['mean']:.3f} ({cmp(p10, g)} GRPO); largest seed std {spread:.3f}. "
           f"PPO holds {summary[arm_names[1]]['model_copies']} model copies vs GRPO's {summary[arm_names[0]]['model_copies']} "
           f"and {summary[arm_names[1]]['trainable_params'] / summary[arm_names[0]]['trainable_params']:.2f}x the trainable parameters.")
print(finding)
metrics = {"methods": summary, "finding": finding, "runs": results_dicts(results),
           "paper": "PPO lambda=0.95 considerably worse than GRPO; lambda=1.0 nearly matches GRPO (v2 A.3)",
           "config": {"steps": cfg.rl.steps, "batch_size": cfg.rl.batch_size, "num_generations": cfg.rl.num_generations,
                      "lr": cfg.rl.lr, "critic": cfg.rl.critic, "seeds": list(seeds)}}
atomic_write_json(out_dir / "metrics.json", metrics)'''),
]

NB03 = [
    md("""# 03 · Ablation: the context-length expansion at step 8,200

R1-Zero trains with a 32,768-token limit until step 8,200 of 10,400 and with 65,536 afterwards; the paper
notes a jump in both accuracy and length at the switch (paper_facts §2.2). Three arms, everything else equal:

- **fixed short**: the short limit for the whole run;
- **fixed long**: the long limit for the whole run;
- **short → long**: the short limit until 8,200/10,400 of the run, then the long one (the paper's schedule, scaled).

The short limit must bind: it is chosen so that the base model's solutions are often truncated
(measured below as the truncated fraction at step 0). Evaluation uses the same protocol for all arms
(`eval.max_new_tokens`)."""),
    params('''config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides shared by every arm
short_tokens = 32                           # the short limit (must truncate many base-model solutions)
long_tokens = 128                           # the long limit
seeds = [0]                                 # RL seeds per arm
init_model = None                           # None: <runs_dir>/base_model (notebook 00)
resume = True'''),
    code('''import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from r1lib.ablation import curves, results_dicts, run_arms, summarize
from r1lib.algorithms.schedules import PAPER_EXPANSION_STEP, PAPER_STEPS, scaled_step
from r1lib.config import load_config
from r1lib.tracking import atomic_write_json

cfg = load_config(config_path, overrides)
init_model = init_model or str(cfg.runs_path / "base_model")
out_dir = cfg.stage_path("ablation_length")
out_dir.mkdir(parents=True, exist_ok=True)
expand_at = scaled_step(PAPER_EXPANSION_STEP, cfg.rl.steps)
arms = {
    "fixed_short": {"rl.max_new_tokens": short_tokens, "rl.max_new_tokens_schedule": []},
    "fixed_long": {"rl.max_new_tokens": long_tokens, "rl.max_new_tokens_schedule": []},
    "short_to_long": {"rl.max_new_tokens": short_tokens,
                      "rl.max_new_tokens_schedule": [[PAPER_EXPANSION_STEP / PAPER_STEPS, long_tokens]]},
}
print(f"steps={cfg.rl.steps}; expansion at step {expand_at} (8,200/10,400 of the run); short={short_tokens} long={long_tokens}")'''),
    code('''results = run_arms(cfg, arms, seeds, init_model=init_model, runs_dir=cfg.runs_path / "ablation_length", resume=resume)
summary = summarize(results)'''),
    md("## Held-out pass@1, truncated fraction and response length over steps"),
    code('''fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, (key, label) in zip(axes, [("eval/pass@1", "held-out pass@1"), ("truncated_fraction", "truncated fraction (rollouts)"),
                                   ("length/mean", "response length (rollouts, tokens)")]):
    for arm, by_step in curves(results, key).items():
        steps = sorted(by_step)
        ax.plot(steps, [np.mean(by_step[s]) for s in steps], marker="o" if key.startswith("eval") else None, label=arm)
    ax.axvline(expand_at, color="k", linestyle="--", linewidth=1, label=f"expansion (step {expand_at})")
    ax.set_xlabel("RL step"); ax.set_title(label); ax.legend(fontsize=8)
fig.tight_layout(); fig.savefig(out_dir / "length_expansion.png", dpi=120); plt.show()'''),
    code('''from r1lib.tracking import read_metrics
rows = {}
for r in results:
    df = read_metrics(r.out_dir)
    tr = df.dropna(subset=["truncated_fraction"]).sort_values("step")
    rows.setdefault(r.arm, []).append({
        "final_pass_at_1": r.final_eval.get("eval/pass@1"),
        "first_step_truncated_fraction": float(tr["truncated_fraction"].iloc[0]),
        "final_truncated_fraction": float(tr["truncated_fraction"].iloc[-5:].mean()),
        "final_length": float(tr["length/mean"].iloc[-5:].mean()),
        "final_eval_length": r.final_eval.get("eval/mean_length"),
    })
arms_out = {arm: {k: float(np.mean([x[k] for x in xs])) for k in xs[0]} for arm, xs in rows.items()}
for arm in arms_out:
    arms_out[arm]["final_pass_at_1_std"] = summary[arm]["final_pass_at_1"]["std"]
    arms_out[arm]["sec_per_step"] = summary[arm]["sec_per_step"]
binds = arms_out["fixed_short"]["first_step_truncated_fraction"]
table = "| arm | final pass@1 | truncated at step 1 | truncated (last 5 steps) | length (last 5 steps) | s/step |\\n|---|---|---|---|---|---|\\n"
table += "\\n".join(f"| {a} | {v['final_pass_at_1']:.3f} | {v['first_step_truncated_fraction']:.2f} | {v['final_truncated_fraction']:.2f} | "
                   f"{v['final_length']:.1f} | {v['sec_per_step']:.2f} |" for a, v in arms_out.items())
display(Markdown(table + f"\\n\\nThe short limit truncates {binds:.0%} of the rollouts at step 1."))
atomic_write_json(out_dir / "metrics.json", {"arms": arms_out, "expansion_step": expand_at, "steps": cfg.rl.steps,
                                             "short_tokens": short_tokens, "long_tokens": long_tokens, "seeds": list(seeds),
                                             "runs": results_dicts(results)})'''),
]


def main() -> None:
    which = sys.argv[1:] or ["01", "02", "03"]
    books = {"01": ("01_r1_zero_grpo.ipynb", NB01), "02": ("02_ablation_grpo_vs_ppo.ipynb", NB02),
             "03": ("03_ablation_length_expansion.ipynb", NB03)}
    for key in which:
        name, cells = books[key]
        nbformat.write(notebook(cells), ROOT / "notebooks" / name)
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    main()
