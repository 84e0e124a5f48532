# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · R1-Zero: pure RL with GRPO from the base model
#
# DeepSeek-R1-Zero is trained from DeepSeek-V3-Base with **reinforcement learning only**: no supervised
# fine-tuning, rule-based rewards, and the R1-Zero template (`docs/paper.md` §1-2). Here the
# "base model" is our tiny Llama pretrained in notebook 00, and the policy optimiser is r1lib's own GRPO
# engine (`r1lib.training.rl`, algorithm in `r1lib.algorithms`). The base model can add multi-digit numbers
# reliably in its self-checking `careful` style but rarely uses it under the template (notebook 00); the
# reward never mentions a style, so whatever RL amplifies, it finds on its own.
#
# One GRPO step (paper Eq. 1-3):
#
# 1. take a batch of questions; sample **G** completions each from the current policy (rollout temperature);
# 2. reward each completion: **accuracy** (1 if the `<answer>` matches the reference) **+ format** (1 if the
#    reasoning is inside `<think>…</think>` and the answer inside `<answer>…</answer>`), same weight;
# 3. advantage of completion *i* = (r_i − mean(r_group)) / std(r_group): no critic, the group is the baseline;
# 4. maximise the clipped surrogate min(ρA, clip(ρ, 1−ε, 1+ε)A) − β·KL(π‖π_ref), with the unbiased k3 KL
#    estimator, over one inner epoch of mini-batches; the reference π_ref is hard-reset to the policy every
#    400 of 10,400 steps (scaled to this run's length).
#
# The paper's numbers and ours (every deviation is also labelled in `r1lib/config.py` and the code):
#
# | setting | paper (R1-Zero) | here (default experiment) | why |
# |---|---|---|---|
# | model | DeepSeek-V3-Base, 671B MoE | tiny Llama, 0.9M params (nb 00) | CPU, minutes |
# | steps | 10,400 | `rl.steps` | CPU budget ≤ 5 min of training |
# | questions × G per step | 32 × 16 = 512 | `rl.batch_size` / `rl.num_generations` | CPU budget |
# | rollout temperature | 1.0 | `rl.temperature` | — |
# | clip ε | 10 (R1 stage 1) | `rl.epsilon` | a tiny model with few samples is unstable at ε = 10 |
# | KL β, estimator | 0.001, k3 | 0.001, k3 | — |
# | reference reset | every 400 of 10,400 steps | same fraction of `rl.steps` | — |
# | mini-batches, inner epochs | 16, 1 | `rl.mini_batches`, 1 | — |
# | max length | 32,768 → 65,536 at step 8,200 | `rl.max_new_tokens` (+ schedule), above the careful style's length | CPU budget |
# | learning rate | 3e-6 | `rl.lr` | a 0.9M-parameter model and a few dozen steps |
# | loss aggregation | not stated | per-sequence mean (DeepSeekMath, TRL `grpo`) | documented in `r1lib.algorithms.losses` |
#

# %% tags=["parameters"]
config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides, e.g. {"rl.steps": 20}
init_model = None                           # None: model.path if set, else <runs_dir>/base_model (notebook 00)
resume = True                               # continue from the newest checkpoint of an interrupted run

# %%
import json
import shutil

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from r1lib.analysis import (aha_examples, aha_rate_by_step, completions_at, eval_curve, r1_zero_report,
                            read_eval_samples, read_self_corrections, style_by_step)
from r1lib.config import load_config
from r1lib.corpus import STYLES
from r1lib.evaluation import evaluate_model, held_out
from r1lib.paths import portable_path
from r1lib.rewards import accuracy_reward, format_reward
from r1lib.tasks.base import Example
from r1lib.tracking import atomic_write_json, read_metrics
from r1lib.launch import run_rl

cfg = load_config(config_path, overrides, notebook="01_r1_zero_grpo")
rl = cfg.rl
init_model = init_model or cfg.base_model
run_dir = cfg.runs_path / "r1_zero"        # checkpoints, metrics.jsonl, eval samples (gitignored)
out_dir = cfg.stage_path("r1_zero")       # committed figures and metrics.json
out_dir.mkdir(parents=True, exist_ok=True)
print(f"init model: {portable_path(init_model, cfg.root)}\nrun dir: {portable_path(run_dir, cfg.root)}")
print(f"algorithm={rl.algorithm} steps={rl.steps} batch={rl.batch_size} G={rl.num_generations} lr={rl.lr} "
      f"beta={rl.beta} eps={rl.epsilon} T={rl.temperature} mini_batches={rl.mini_batches} "
      f"max_new_tokens={rl.max_new_tokens} schedule={rl.max_new_tokens_schedule} aggregation={rl.loss_aggregation}")

# %% [markdown]
# ## The rule rewards, tried on strings
#
# Accuracy compares the content of the last `<answer>` with the reference; format asks for the template's tags in
# order. Both are 0/1 and summed, as in the paper (Eq. 4). Neither says anything about how to reason.

# %%
ex = Example(id="demo", task="addition", problem="Compute 386 + 7776.", answer="8162")
for text in ["<think> I know this one. </think> <answer> 8162 </answer>",
             "<think> Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. Check 38 + 777: 8 + 7 + 1 = 16, so far 62. "
             "Check 3 + 77: 3 + 7 + 1 = 11, so far 162. Check 0 + 7: 0 + 7 + 1 = 8, so far 8162. </think> <answer> 8162 </answer>",
             "<think> Easy. </think> <answer> 8152 </answer>",
             "The answer is 8162."]:
    print(f"accuracy={accuracy_reward(text, ex):.0f} format={format_reward(text, ex):.0f}  {text!r}")

# %% [markdown]
# ## Train
#
# `run_rl` runs the loop, logs every step to `metrics.jsonl` (and W&B, offline by default), evaluates the
# held-out split every `rl.eval_every` steps with the paper's protocol (temperature 0.6, top-p 0.95,
# `rl.eval_k` samples per question) and checkpoints every `rl.checkpoint_every` steps. Re-running this cell
# after an interruption resumes from the newest checkpoint. It trains in this process, or, when the experiment
# sets `launch.accelerate_config` (several GPUs: DDP, DeepSpeed ZeRO-2/3), in `accelerate launch` processes that
# it starts and waits for, streaming their output here.

# %%
result = run_rl(cfg, init_model=init_model, out_dir=run_dir, resume=resume)
print(f"{result.steps} steps in {result.train_seconds:.0f} s")
metrics = read_metrics(run_dir)
shutil.copyfile(run_dir / "metrics.jsonl", out_dir / "train_log.jsonl")   # the log, committed beside the figures
samples = read_eval_samples(run_dir)
k = rl.eval_k

# %% [markdown]
# ## Fig. 2 analogue: held-out accuracy over training
#
# The paper plots AIME 2024 pass@1 (16 samples) and cons@16 over 8,000+ steps (R1-Zero: 15.6% → 71.0%
# pass@1, 86.7% cons@64). Ours: the held-out synthetic split.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for key, label in [("eval/pass@1", "pass@1"), (f"eval/cons@{k}", f"cons@{k}"), (f"eval/pass@{k}", f"pass@{k}")]:
    if key in metrics:
        ax.plot(*eval_curve(metrics, key), marker="o", label=label)
ax.plot(*eval_curve(metrics, "accuracy"), alpha=0.4, label="training rollouts (T = rl.temperature)")
ax.set_xlabel("RL step"); ax.set_ylabel("accuracy"); ax.set_ylim(0, 1); ax.legend(fontsize=8)
ax.set_title("R1-Zero analogue: accuracy during GRPO")
fig.tight_layout(); fig.savefig(out_dir / "fig2_accuracy.png", dpi=120); plt.show()

# %% [markdown]
# ## Fig. 3 analogue: response length over training
#
# In the paper the average response length on the training set grows steadily (to ~10k tokens): the model
# learns to think longer. `length/mean` is the training rollouts' mean; `eval/mean_length` the held-out mean.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(*eval_curve(metrics, "length/mean"), alpha=0.6, label="training rollouts (mean)")
ax.plot(*eval_curve(metrics, "eval/mean_length"), marker="o", label="held-out (mean)")
ax.plot(*eval_curve(metrics, "max_new_tokens"), linestyle="--", color="k", linewidth=1, label="max_new_tokens")
ax.set_xlabel("RL step"); ax.set_ylabel("tokens per response"); ax.legend()
ax.set_title("Response length during GRPO")
fig.tight_layout(); fig.savefig(out_dir / "fig3_length.png", dpi=120); plt.show()

# %% [markdown]
# ## Which pretraining style did RL amplify?
#
# Every completion is classified into the corpus style it resembles (`r1lib.corpus.classify_style`). RL is told
# nothing about styles; it finds the one that earns the reward. Left: training rollouts, every step; right: the
# held-out evaluations.

# %%
eval_styles = style_by_step(samples)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), sharey=True)
for style in STYLES:
    axes[0].plot(*eval_curve(metrics, f"style/{style}"), label=style)
    axes[1].plot(list(eval_styles), [v[style] for v in eval_styles.values()], marker="o", label=style)
axes[0].set_title("training rollouts"); axes[1].set_title("held-out evaluations (T 0.6)")
for ax in axes:
    ax.set_xlabel("RL step"); ax.set_ylim(0, 1); ax.legend()
axes[0].set_ylabel("share of completions")
fig.tight_layout(); fig.savefig(out_dir / "style_distribution.png", dpi=120); plt.show()

# %% [markdown]
# ## Reflection words and self-corrections over training (v2 Fig. 9)
#
# The share of responses containing a reflection word ("wait", "mistake", "however", "but", "retry", "error",
# "verify", "wrong", "evaluate", "check"), of responses that announce a correction ("Wait"), and of responses that
# are correct *and* hold a real "aha" fix: a wrong step, the cue, then the same step done right
# (`r1lib.analysis.find_aha`). A "Wait" without a real fix is superficial reflection: the cue is imitated from the
# corpus, nothing is checked. The training rollouts are sampled at T = 1, where the corpus's slips survive; the
# held-out evaluations at T 0.6.

# %%
aha_rates = aha_rate_by_step(samples)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(*eval_curve(metrics, "reflection_rate"), alpha=0.6, label="reflection word, rollouts")
ax.plot(*eval_curve(metrics, "eval/reflection_rate"), marker="o", label="reflection word, held-out")
ax.plot(*eval_curve(metrics, "correction_attempt_rate"), alpha=0.6, label="'Wait' (a correction announced), rollouts")
ax.plot(*eval_curve(metrics, "aha_rate"), alpha=0.6, label="correct with an aha fix, rollouts")
ax.plot(list(aha_rates), list(aha_rates.values()), marker="s", label="correct with an aha fix, held-out")
ax.set_xlabel("RL step"); ax.set_ylabel("share of responses"); ax.legend(fontsize=8)
ax.set_title("Reflection and self-correction during GRPO")
fig.tight_layout(); fig.savefig(out_dir / "reflection_words.png", dpi=120); plt.show()

# %% [markdown]
# ## Training dynamics
#
# Reward per function, KL to the (periodically reset) reference, policy entropy, the share of tokens
# whose gradient the clip removed, and the share of groups whose G rewards are all equal (no signal).

# %%
keys = [k_ for k_ in ["rewards/accuracy/mean", "rewards/format/mean", "kl", "entropy", "clip_fraction",
                      "zero_spread_groups", "truncated_fraction", "step_time"] if k_ in metrics]
fig, axes = plt.subplots(2, 4, figsize=(14, 5.5))
for ax, key in zip(axes.flat, keys):
    ax.plot(*eval_curve(metrics, key)); ax.set_title(key, fontsize=9); ax.set_xlabel("step")
fig.tight_layout(); fig.savefig(out_dir / "training_dynamics.png", dpi=120); plt.show()

# %% [markdown]
# ## Completions at the start, middle and end of training
#
# The same held-out problems, first sample at each point.

# %%
eval_steps = sorted(samples)
ids = [r["id"] for r in samples[eval_steps[0]][:3]]
for step in (eval_steps[0], eval_steps[len(eval_steps) // 2], eval_steps[-1]):
    display(Markdown(f"### step {step}"))
    for c in completions_at(samples, step, problem_ids=ids):
        print(f"[{'correct' if c['correct'] else 'wrong'}; gold {c['gold']}] {c['completion']}\n")

# %% [markdown]
# ## Found "aha" examples
#
# Answers whose reasoning holds a reflection word that fixed an earlier wrong step: in the held-out evaluations
# (T 0.6, before and after RL) and in the training rollouts (T 1, every step; `self_corrections.jsonl`).

# %%
problems = {e.id: e.problem for e in held_out(cfg, "test")}
ahas = aha_examples(samples, problems)
per_step = {step: sum(a["step"] == step for a in ahas) for step in eval_steps}
print(f"held-out aha completions per evaluation (of {len(samples[eval_steps[0]]) * k} samples each): {per_step}")
rollout_fixes = read_self_corrections(run_dir)
correct_fixes = [r for r in rollout_fixes if r["correct"]]
print(f"training rollouts: {len(rollout_fixes)} real fixes of a wrong step, {len(correct_fixes)} in a correct answer "
      f"(of {rl.steps * rl.batch_size} rollouts)")
for a in (ahas[-2:] + correct_fixes[-3:]):
    print(f"step {a['step']} | {a['problem']} (gold {a['gold']}) | '{a['word']}': {a['wrong']} -> {a['fixed']}\n  {a['completion']}\n")
atomic_write_json(out_dir / "aha_examples.json", {"held_out": ahas[:10] + ahas[-10:] if len(ahas) > 20 else ahas,
                                                  "rollouts": correct_fixes[:10] + correct_fixes[-10:]
                                                  if len(correct_fixes) > 20 else correct_fixes});

# %% [markdown]
# ## The harder split: one more digit than anything seen in pretraining or RL
#
# Did RL teach a procedure that generalises, or only the lengths it saw? Same protocol, base model vs final policy.

# %%
harder_test = held_out(cfg, "harder")
harder_pass = None
if harder_test:
    harder_pass = {}
    for name, path in (("base", init_model), ("final", result.policy_path)):
        res = evaluate_model(cfg, path, harder_test, k=k, ks=(1, k), keep_completions=0)
        harder_pass[name] = res.summary["pass@1"]
        print(f"{name:5s}: pass@1 {res.summary['pass@1']:.1%}  pass@{k} {res.summary[f'pass@{k}']:.1%}  "
              f"mean length {res.summary['mean_length']:.0f}  truncated {res.summary['truncated_fraction']:.0%}")

# %% [markdown]
# ## Results and targets
#
# `metrics.json` holds the figures (base = the evaluation at step 0, same protocol). Targets: pass@1 +50 points,
# format rate ≥ 95%, cons@k ≥ pass@1, mean length ≥ 2 × and reflection-word rate ≥ 3 × the base's.

# %%
report = r1_zero_report(metrics, k=k, steps=result.steps, train_seconds=result.train_seconds, samples=samples,
                        harder=harder_pass)
report["aha_examples_found"] = len(ahas)
report["rollout_aha_examples_found"] = len(correct_fixes)
atomic_write_json(out_dir / "metrics.json", report)
rows = [("pass@1", "base_pass_at_1", "final_pass_at_1"), (f"cons@{k}", "base_cons_at_k", "final_cons_at_k"),
        ("format rate", "base_format_rate", "final_format_rate"), ("mean length (tokens)", "base_mean_length", "final_mean_length"),
        ("reflection rate", "base_reflection_rate", "final_reflection_rate"),
        ("careful-style share", None, None), ("'Wait' completions", "base_correction_attempts", "final_correction_attempts"),
        ("aha completions (a real fix, correct answer)", "base_aha_count", "final_aha_count"),
        ("harder split pass@1", "harder_base_pass_at_1", "harder_final_pass_at_1")]
def cell(key, side):
    if key is None:
        return f"{report[f'{side}_style_share']['careful']:.3g}"
    return f"{report[key]:.3g}" if key in report else "—"
table = "| metric | base (step 0) | after GRPO |\n|---|---|---|\n" + "\n".join(
    f"| {name} | {cell(a, 'base')} | {cell(b, 'final')} |" for name, a, b in rows)
display(Markdown(table + f"\n\n{report['steps']} steps, {report['train_seconds']:.0f} s of training."))
print(json.dumps(report["targets"], indent=1))
