# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Ablation: the context-length expansion at step 8,200
#
# R1-Zero trains with a 32,768-token limit until step 8,200 of 10,400 and with 65,536 afterwards; the paper
# notes a jump in both accuracy and length at the switch (docs/paper.md §2.2). Three arms, everything else equal:
#
# - **fixed short**: the short limit for the whole run;
# - **fixed long**: the long limit for the whole run;
# - **short → long**: the short limit until 8,200/10,400 of the run, then the long one (the paper's schedule, scaled).
#
# The short limit must bind where it matters. The policy that RL finds (notebook 01) writes the careful,
# self-checking column style: about 125-135 tokens for a 4-column problem and 158-172 for a 5-column one (the
# length table below, measured with the base model's tokenizer). So the short limit (145) lets the careful style
# through on 4-column problems and truncates it on 5-column ones, where a truncated solution earns nothing; the
# long limit (200) fits everything. We expect fixed-short to stall, and short → long to jump after the expansion.
# Evaluation uses the same protocol for all arms (`eval.max_new_tokens`).

# %% tags=["parameters"]
config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides shared by every arm
short_tokens = 145                          # the short limit: fits a careful solution of 4 columns, not of 5
long_tokens = 200                           # the long limit: fits every careful solution
seeds = [0]                                 # RL seeds per arm
init_model = None                           # None: model.path if set, else <runs_dir>/base_model (notebook 00)
resume = True

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from r1lib.ablation import curves, length_summary, results_dicts, run_arms
from r1lib.algorithms.schedules import PAPER_EXPANSION_STEP, PAPER_STEPS, scaled_step
from r1lib.analysis import solution_lengths
from r1lib.config import load_config
from r1lib.evaluation import held_out
from r1lib.tracking import atomic_write_json
from transformers import AutoTokenizer

cfg = load_config(config_path, overrides, notebook="03_ablation_length_expansion")
init_model = init_model or cfg.base_model
out_dir = cfg.stage_path("ablation_length")
out_dir.mkdir(parents=True, exist_ok=True)
expand_at = scaled_step(PAPER_EXPANSION_STEP, cfg.rl.steps)
arms = {
    "fixed_short": {"rl.max_new_tokens": short_tokens, "rl.max_new_tokens_schedule": []},
    "fixed_long": {"rl.max_new_tokens": long_tokens, "rl.max_new_tokens_schedule": []},
    "short_to_long": {"rl.max_new_tokens": short_tokens,
                      "rl.max_new_tokens_schedule": [[PAPER_EXPANSION_STEP / PAPER_STEPS, long_tokens]]},
}
print(f"steps={cfg.rl.steps}; expansion at step {expand_at} (8,200/10,400 of the run); short={short_tokens} long={long_tokens}")
tokenizer = AutoTokenizer.from_pretrained(init_model)
lengths = solution_lengths(tokenizer, held_out(cfg, "test"))
display(Markdown("Tokens of a written solution (min / mean / max) by number of columns:\n\n| columns | "
                 + " | ".join(lengths) + " |\n|---|" + "---|" * len(lengths) + "\n" + "\n".join(
                     f"| {n} | " + " | ".join("{} / {:.0f} / {}".format(*lengths[s][n]) for s in lengths) + " |"
                     for n in sorted(next(iter(lengths.values()))))))

# %%
results = run_arms(cfg, arms, seeds, init_model=init_model, runs_dir=cfg.runs_path / "ablation_length", resume=resume)

# %% [markdown]
# ## Held-out pass@1, truncated fraction and response length over steps

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, (key, label) in zip(axes, [("eval/pass@1", "held-out pass@1"), ("truncated_fraction", "truncated fraction (rollouts)"),
                                   ("length/mean", "response length (rollouts, tokens)")]):
    for arm, by_step in curves(results, key).items():
        steps = sorted(by_step)
        ax.plot(steps, [np.mean(by_step[s]) for s in steps], marker="o" if key.startswith("eval") else None, label=arm)
    ax.axvline(expand_at, color="k", linestyle="--", linewidth=1, label=f"expansion (step {expand_at})")
    ax.set_xlabel("RL step"); ax.set_title(label); ax.legend(fontsize=8)
fig.tight_layout(); fig.savefig(out_dir / "length_expansion.png", dpi=120); plt.show()

# %%
arms_out = length_summary(results, expand_at)
table = ("| arm | final pass@1 (± std) | pass@1 at the expansion step | change after it | truncated, most before the expansion "
         "| truncated, last 5 steps | length, last 5 steps | s/step |\n|---|---|---|---|---|---|---|---|\n")
table += "\n".join(f"| {a} | {v['final_pass_at_1']:.3f} ± {v['final_pass_at_1_std']:.3f} | {v['pass_at_1_before_expansion']:.3f} | "
                   f"{v['gain_after_expansion']:+.3f} | {v['max_truncated_fraction_before_expansion']:.2f} | "
                   f"{v['final_truncated_fraction']:.2f} | {v['final_length']:.0f} | {v['sec_per_step']:.2f} |"
                   for a, v in arms_out.items())
display(Markdown(table))
atomic_write_json(out_dir / "metrics.json", {"arms": arms_out, "expansion_step": expand_at, "steps": cfg.rl.steps,
                                             "short_tokens": short_tokens, "long_tokens": long_tokens, "seeds": list(seeds),
                                             "runs": results_dicts(results)});
