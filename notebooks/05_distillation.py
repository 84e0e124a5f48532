# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Distillation: the R1 analogue's reasoning into smaller students, and distillation vs RL on one student
#
# DeepSeek-R1 is distilled into six dense students (Qwen2.5-Math-1.5B ... Llama-3.3-70B) by **SFT alone** on its
# ~800k samples: 2–3 epochs, lr cosine to a tenth, no RL stage "even though incorporating RL could substantially
# boost model performance" (docs/paper.md §4). Two results: the distilled students reason well for their size
# (v1 Table 5), and on the same small base, distillation beats large-scale RL (v1 Table 6: Qwen-32B distilled
# 72.6 vs Qwen-32B-Zero 47.0 AIME pass@1, the RL run over 10K steps).
#
# | | paper | here (`r1lib.distillation`, sizes in `distill` of the config) |
# |---|---|---|
# | teacher | DeepSeek-R1 | the R1 analogue of notebook 04 (`runs/.../r1_pipeline/r1/mixed/policy`) |
# | data | stage 3's 800k rows (600k verified reasoning samples + 200k non-reasoning) | the teacher's own samples on fresh training prompts, stage 3's filters (correct, readable format, one language, no repetition, not cut), + non-reasoning rows at 3 : 1 |
# | students | Qwen2.5-Math-1.5B / 7B, Qwen2.5-14B / 32B, Llama-3.1-8B, Llama-3.3-70B | size presets pretrained on the teacher base's corpus and tokenizer (notebook 00; the default's own preset is the teacher's base itself) |
# | SFT | 2–3 epochs, batch 64, lr 1e-4 (1.5B) cosine to 1/10 | TRL `SFTTrainer`, loss on the reply only, lr cosine to 1/10; 6 epochs (deviation: `DistillConfig.epochs`) |
# | RL baseline | Qwen-32B-Base, large-scale RL on math, code, STEM, > 10K steps | the first (smallest) student's base, notebook 01's GRPO recipe: R1-Zero template, accuracy + format rewards, `rl` settings, `distill.rl_steps` steps |
#
# Both sides of the comparison run over the same seeds, and their compute is measured: training seconds and
# training tokens (tokens that receive a loss). The teacher's sampling is reported apart: it is paid once for all
# students, and the teacher's own training (notebooks 01 and 04) is not counted, as in the paper.

# %% tags=["parameters"]
config_path = "experiments/default.yaml"   # experiment YAML (relative to the repository root)
overrides = {}                              # dotted-key overrides, e.g. {"distill.rl_steps": 30}
students = None                             # distill.students (smallest first), e.g. ["nano", "tiny"]
teacher = None                              # distill.teacher; None: the R1 analogue of notebook 04
seeds = None                                # distill.seeds of the distillation-vs-RL comparison

# %%
import json

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from r1lib.config import load_config, named_overrides
from r1lib.distillation import (distillation_metrics, row_format, run_distillation, student_bases,
                                table5_markdown, table6_markdown)
from r1lib.evaluation import held_out
from r1lib.paths import portable_path
from r1lib.pipeline import replies
from r1lib.tracking import atomic_write_json, read_metrics

cfg = load_config(config_path, named_overrides(overrides, {"distill.students": students, "distill.teacher": teacher,
                                                           "distill.seeds": seeds}),
                  notebook="05_distillation")
run_dir = cfg.runs_path / "distillation"
out_dir = cfg.stage_path("distillation")
out_dir.mkdir(parents=True, exist_ok=True)
cfg.distill

# %% [markdown]
# ## The students' base models
#
# Pretrained by notebook 00 on the same corpus as the teacher's base (a missing one is pretrained here, with the
# same code and settings).

# %%
bases = student_bases(cfg, progress=True)
display(pd.DataFrame([{"student": s.name, "params": f"{s.params:,}", "source": s.source,
                       "path": portable_path(s.path, cfg.root)} for s in bases]))

# %% [markdown]
# ## Teacher data → SFT of every student → RL on the first student (finished parts are reused on a rerun)

# %%
result = run_distillation(cfg, run_dir, students=bases)
data = result.data
print(f"distillation set: {data['n_rows']} rows {data['rows']}" + (f"  NOTE: {data['note']}" if data.get("note") else ""))
if "sampled" in data["filter"]:
    f = data["filter"]
    print(f"teacher samples: {f['sampled']} on {f['prompts']} prompts, kept {f['kept']} ({f['keep_rate']:.1%}; "
          f"dropped {f['dropped']}); {f['prompts_kept']} prompts with a kept trace; {data['seconds']:.0f} s")

# %% [markdown]
# ## The analogue of v1 Table 5: the teacher and the distilled students
#
# Held-out test problems, `distill.eval_k` samples each at T 0.6 / top-p 0.95 (pass@1 averaged over them, cons@k
# by majority vote), in each model's own format: the distilled students answer in the chat format they were
# distilled in, the bases under the R1-Zero template.

# %%
metrics = distillation_metrics(cfg, result)
t5 = table5_markdown(metrics)
(out_dir / "table5.md").write_text(t5 + "\n")
display(Markdown(t5))

# %% [markdown]
# ## The analogue of v1 Table 6: distillation vs RL on the same small student
#
# The paper: distilling the 32B student beats RL on the same base by 25.6 AIME points. Our first student, every
# seed, with each side's measured compute.

# %%
t6 = table6_markdown(metrics)
(out_dir / "table6.md").write_text(t6 + "\n")
display(Markdown(t6))
v = metrics["distill_vs_rl"]
display(Markdown(f"**Measured:** distilled {100 * v['distill_pass_at_1_mean']:.1f} ± {100 * v['distill_pass_at_1_std']:.1f} "
                 f"vs RL {100 * v['rl_pass_at_1_mean']:.1f} ± {100 * v['rl_pass_at_1_std']:.1f} pass@1 "
                 f"({len(v['seeds'])} seeds): {v['verdict']}. RL used {v['rl_seconds']:.0f} s and "
                 f"{v['rl_train_tokens']:,.0f} training tokens per seed, SFT {v['distill_seconds']:.0f} s and "
                 f"{v['distill_train_tokens']:,.0f} (+ {v['teacher_data_seconds']:.0f} s of teacher sampling, once)."))

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
rows = metrics["rows"]
names = list(rows)
axes[0].barh(names, [rows[n]["pass_at_1"] for n in names], color=["tab:green" if "distilled" in n else
             "tab:orange" if "rl" in n else "tab:gray" if "base" in n else "tab:blue" for n in names])
axes[0].invert_yaxis(); axes[0].set_xlim(0, 1); axes[0].set_xlabel("held-out pass@1")
axes[0].set_title("teacher, students' bases, distilled students, RL on the first student")
first = v["student"]
for seed in v["seeds"]:
    df = read_metrics(run_dir / "students" / first / "rl" / f"rl_seed{seed}").dropna(subset=["accuracy"])
    axes[1].plot(df["train_seconds"], df["accuracy"], alpha=0.8, label=f"GRPO from the base, seed {seed} (rollouts)")
for seed, value in v["distill_per_seed"].items():
    name = f"{first}/distilled" if seed == v["seeds"][0] else f"{first}/distilled_seed{seed}"
    axes[1].scatter([result.sft[name]["seconds"]], [value], marker="*", s=160, zorder=3,
                    label=f"distilled, seed {seed} (held-out)")
axes[1].set_xlabel("training seconds"); axes[1].set_ylabel("accuracy"); axes[1].set_ylim(0, 1)
axes[1].set_title(f"{first}: RL from the base vs distillation, by compute"); axes[1].legend(fontsize=7)
fig.tight_layout(); fig.savefig(out_dir / "distillation.png", dpi=120); plt.show()

# %% [markdown]
# ## What a distilled student writes (one held-out problem)

# %%
problem = held_out(cfg, "test")[0]
shown = {n: row_format(n) for n in result.models if n == "teacher" or n.endswith(("/distilled", "/rl_seed0"))}
for name, text in replies(cfg, result.models, problem.problem, formats=shown).items():
    print(f"--- {name} [{shown[name]} format] (gold {problem.answer})\n{text}\n")

# %%
atomic_write_json(out_dir / "metrics.json", metrics)
{k: v for k, v in metrics["distill_vs_rl"].items() if not isinstance(v, dict)}
