# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Ablation: GRPO vs PPO on one engine
#
# The paper's supplementary A.3 (v2, docs/paper.md §8) compares PPO and GRPO on MATH with a 16B MoE model:
# *"When λ is set to 0.95 (the default value in most open-source PPO implementations), PPO performs
# considerably worse than GRPO. However, with careful tuning (setting λ to 1.0), PPO's performance improves
# substantially, nearing that of GRPO."* GRPO also needs no value model, which the paper counts as memory
# and compute saved.
#
# Here all three arms run on r1lib's engine with the **same** base model, tasks, rollouts, rewards,
# optimizer, schedule, budget and evaluation; only the advantage estimator differs (GRPO's group baseline vs
# PPO's GAE with a learned critic), plus the critic itself (a value head on a copy of the base model,
# `rl.critic`). PPO puts the KL in the reward per token (classic PPO-RLHF, `rl.kl_in`), GRPO in the loss.
#

# %% tags=["parameters"]
config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides shared by every arm, e.g. {"rl.steps": 10}
seeds = [0, 1, 2]                           # RL seeds per arm (the held-out set stays fixed)
init_model = None                           # None: model.path if set, else <runs_dir>/base_model (notebook 00)
resume = True

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from r1lib.ablation import curves, grpo_vs_ppo_finding, results_dicts, run_arms, summarize
from r1lib.config import load_config
from r1lib.tracking import atomic_write_json

cfg = load_config(config_path, overrides, notebook="02_ablation_grpo_vs_ppo")
init_model = init_model or cfg.base_model
out_dir = cfg.stage_path("ablation_grpo_vs_ppo")
out_dir.mkdir(parents=True, exist_ok=True)
arms = {
    "GRPO": {"rl.algorithm": "grpo"},
    "PPO (lambda=0.95)": {"rl.algorithm": "ppo", "rl.lam": 0.95},
    "PPO (lambda=1.0)": {"rl.algorithm": "ppo", "rl.lam": 1.0},
}
print(f"steps={cfg.rl.steps} batch={cfg.rl.batch_size} G={cfg.rl.num_generations} lr={cfg.rl.lr} "
      f"critic={cfg.rl.critic} critic_lr={cfg.rl.critic_lr or 10 * cfg.rl.lr} gamma={cfg.rl.gamma} seeds={seeds}")

# %% [markdown]
# ## Train every arm with every seed

# %%
results = run_arms(cfg, {name.replace(" ", "_").replace("(", "").replace(")", "").replace("=", ""): ov
                            for name, ov in arms.items()}, seeds, init_model=init_model,
                   runs_dir=cfg.runs_path / "ablation_grpo_vs_ppo", resume=resume, progress=False)
names = dict(zip([n.replace(" ", "_").replace("(", "").replace(")", "").replace("=", "") for n in arms], arms))
for r in results:
    r.arm = names[r.arm]
summary = summarize(results)
for arm, s in summary.items():
    print(f"{arm:18s} pass@1 {s['final_pass_at_1']['mean']:.3f} ± {s['final_pass_at_1']['std']:.3f}  "
          f"{s['sec_per_step']:.2f} s/step  peak RSS {s['peak_mem_mb']:.0f} MiB  "
          f"trainable {s['trainable_params']:,}  model copies {s['model_copies']}")

# %% [markdown]
# ## Held-out pass@1 over steps (mean and spread over seeds)

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for arm, by_step in curves(results, "eval/pass@1").items():
    steps = sorted(by_step)
    vals = [np.array(by_step[s]) for s in steps]
    mean = np.array([v.mean() for v in vals])
    ax.plot(steps, mean, marker="o", label=arm)
    ax.fill_between(steps, [v.min() for v in vals], [v.max() for v in vals], alpha=0.2)
ax.set_xlabel("RL step"); ax.set_ylabel("held-out pass@1"); ax.legend(); ax.set_title("GRPO vs PPO (band: min-max over seeds)")
fig.tight_layout(); fig.savefig(out_dir / "pass_at_1.png", dpi=120); plt.show()

# %% [markdown]
# ## Cost: wall time per step, peak memory, parameters and model copies

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
arm_names = list(summary)
axes[0].bar(arm_names, [summary[a]["sec_per_step"] for a in arm_names]); axes[0].set_ylabel("s / step (median)")
axes[1].bar(arm_names, [summary[a]["model_state_mb"] for a in arm_names]); axes[1].set_ylabel("model state (MiB): weights+grads+Adam, ref")
axes[2].bar(arm_names, [summary[a]["trainable_params"] for a in arm_names]); axes[2].set_ylabel("trainable parameters")
for ax in axes:
    ax.tick_params(axis="x", labelrotation=15, labelsize=8)
fig.tight_layout(); fig.savefig(out_dir / "cost.png", dpi=120); plt.show()
table = "| arm | final pass@1 (mean ± std) | s/step | model state (MiB) | peak RSS (MiB) | trainable params | model copies |\n|---|---|---|---|---|---|---|\n"
table += "\n".join(f"| {a} | {s['final_pass_at_1']['mean']:.3f} ± {s['final_pass_at_1']['std']:.3f} | {s['sec_per_step']:.2f} | "
                   f"{s['model_state_mb']:.1f} | {s['peak_mem_mb']:.0f} | {s['trainable_params']:,} | {s['model_copies']} |"
                   for a, s in summary.items())
display(Markdown(table))

# %% [markdown]
# ## Which style did each arm amplify?
#
# The share of the careful (step-by-step, self-checking) style in each arm's training rollouts. A collapse to
# `direct` answers means the arm learned the format reward and nothing else.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), sharey=True)
for ax, style in zip(axes, ("careful", "direct")):
    for arm, by_step in curves(results, f"style/{style}").items():
        steps = sorted(by_step)
        ax.plot(steps, [np.mean(by_step[s]) for s in steps], label=arm)
    ax.set_title(f"share of '{style}' completions (rollouts, mean over seeds)"); ax.set_xlabel("RL step")
    ax.set_ylim(0, 1); ax.legend(fontsize=8)
fig.tight_layout(); fig.savefig(out_dir / "styles.png", dpi=120); plt.show()

# %% [markdown]
# ## The paper's finding next to ours
#
# Paper (v2 A.3, DeepSeek-Coder-V2-Lite on MATH): PPO with λ = 0.95 clearly worse than GRPO; PPO with
# λ = 1.0 nearly matches GRPO; GRPO needs no value model (one fewer model of the policy's size in memory).
# Ours, from the measured numbers: two arms *separate* when the gap between their means exceeds the sum of their
# seed standard deviations.

# %%
finding = grpo_vs_ppo_finding(summary, *arm_names)
print(finding["text"]); print(json.dumps(finding["verdict"], indent=1))
metrics = {"methods": summary, "finding": finding["text"], "verdict": finding["verdict"], "runs": results_dicts(results),
           "paper": "PPO lambda=0.95 considerably worse than GRPO; lambda=1.0 nearly matches GRPO (v2 A.3)",
           "config": {"steps": cfg.rl.steps, "batch_size": cfg.rl.batch_size, "num_generations": cfg.rl.num_generations,
                      "lr": cfg.rl.lr, "critic": cfg.rl.critic, "seeds": list(seeds)}}
atomic_write_json(out_dir / "metrics.json", metrics);
