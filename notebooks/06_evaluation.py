# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Evaluation: pass@1 over k samples, pass@k, cons@k
#
# The paper's evaluation protocol (`docs/paper.md` §5):
#
# - **Sampling, not greedy.** Greedy decoding gives more repetition and high variance, so each question gets
#   *k* responses sampled at **temperature 0.6** and **top-p 0.95** (k = **64** for AIME and GPQA, **16** for MATH).
# - **pass@1** $= \frac{1}{k}\sum_{i=1}^{k} p_i$, where $p_i$ is the correctness of response *i*: the share of the
#   *k* samples that are correct, averaged over the questions. It is far less noisy than one greedy answer.
# - **pass@k**: the probability that at least one of *k* samples is correct, computed with the unbiased estimator
#   $1 - \binom{n-c}{k}/\binom{n}{k}$ from the *n* samples (*c* correct). The curve over *k* shows how much the model
#   *can* solve if allowed several tries (R1 reaches Pass@64 = 90.0% on AIME 2024, §6.2).
# - **cons@k**: majority vote over the *k* final answers (answers are grouped up to mathematical equivalence);
#   the paper reports cons@64 on AIME (R1-Zero: 71.0 pass@1 → 86.7 cons@64) and Cons@16 on its training curves.
#
# Besides accuracy we report what the paper tracks during R1-Zero training (§7): format rate, response length
# and truncation, the rate of reflection words ("wait", "check", ...), and language consistency (§1.3).
#
# **Deviations (CPU scale):** the paper generates up to 32,768 tokens per response; here `eval.max_new_tokens`
# (default 256) and *k* come from the experiment config, and the benchmarks are the held-out synthetic test split
# plus optional staged sets (GSM8K, MATH-500, AIME 2024, ...). All logic lives in `r1lib.evaluation`;
# this notebook only calls it and plots.

# %% tags=["parameters"]
config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides, e.g. {"eval.k": 4}
checkpoints = None                          # None: cfg.eval.checkpoints, or the base model + every trained stage

# %%
import logging
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from r1lib.config import load_config
from r1lib.evaluation import evaluate_checkpoints, resolve_checkpoints, results_table, write_results
from r1lib.paths import portable_path

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
cfg = load_config(config_path, overrides, notebook="06_evaluation")
out_dir = cfg.stage_path("evaluation")   # results/evaluation/ for the default experiment
checkpoints = resolve_checkpoints(checkpoints, cfg)
benchmarks = cfg.eval.benchmarks
print(f"checkpoints: {[portable_path(c, cfg.root) for c in checkpoints]}")
print(f"benchmarks: {benchmarks}; k={cfg.eval.k}, temperature={cfg.eval.temperature}, "
      f"top_p={cfg.eval.top_p}, max_new_tokens={cfg.eval.max_new_tokens}")

# %% [markdown]
# ## Evaluate every checkpoint on every benchmark
#
# Tables go to `<stages_dir>/evaluation` as Markdown, CSV and JSON (raw fractions), plus one JSON line per question in `eval_records.jsonl`.

# %%
rows = evaluate_checkpoints(checkpoints, benchmarks, cfg, progress=True)
paths = write_results(rows, out_dir, name="eval")
print("\n".join(f"wrote {portable_path(p, cfg.root)}" for p in paths.values()))

# %%
display(Markdown(results_table(rows)))

# %% [markdown]
# ## pass@k curves
#
# The gap between pass@1 and pass@k is what RL can still turn into single-sample accuracy.

# %%
fig, axes = plt.subplots(1, len(benchmarks), figsize=(5 * len(benchmarks), 3.5), squeeze=False)
for ax, bench in zip(axes[0], benchmarks):
    for row in rows:
        curve = row["details"][bench].curve()
        ax.plot(list(curve), list(curve.values()), marker="o", label=Path(row["checkpoint"]).name)
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.set_title(f"{bench}: pass@k")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out_dir / "eval_pass_at_k.png", dpi=120)
plt.show()

# %% [markdown]
# ## Response lengths
#
# The paper's R1-Zero responses grow from hundreds to thousands of tokens during RL (docs/paper.md §7); mass at `max_new_tokens` means truncation.

# %%
fig, axes = plt.subplots(1, len(benchmarks), figsize=(5 * len(benchmarks), 3.5), squeeze=False)
for ax, bench in zip(axes[0], benchmarks):
    for row in rows:
        ax.hist(row["details"][bench].lengths(), bins=30, alpha=0.5, label=Path(row["checkpoint"]).name)
    ax.axvline(cfg.eval.max_new_tokens, color="k", linestyle="--", linewidth=1, label="max_new_tokens")
    ax.set_xlabel("response length (tokens)")
    ax.set_ylabel("completions")
    ax.set_title(f"{bench}: response lengths")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out_dir / "eval_lengths.png", dpi=120)
plt.show()
