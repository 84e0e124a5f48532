# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · The embedded base model: a tiny "DeepSeek-V3-Base" trained from scratch
#
# No weights can be downloaded here, so r1lib builds its own base model: a byte-level BPE tokenizer (every digit
# its own token) and a Llama-architecture model pretrained on a synthetic corpus made from the task generators
# (train split only). It is our analogue of DeepSeek-V3-Base, and it decides whether every later notebook shows
# something real: **RL can only amplify a skill the base model already has** (Echo Chamber, arXiv 2504.07912:
# RL converges on one pretraining output style, usually the most accurate one).
#
# So the corpus gives the model a reliable step-by-step procedure that it **rarely uses** under the R1-Zero
# template (`r1lib.corpus`, proportions in `pretrain.corpus` of the config):
#
# | ingredient | design |
# |---|---|
# | tasks | multi-digit addition and subtraction (`r1lib.tasks.digits`): answers of ≥ 4 digits, so guessing earns nothing; every written step is a single-digit fact or a copy |
# | style `direct` | the answer only: a 1M-parameter model cannot add 4-digit numbers in its head |
# | style `short` | column by column with carries and the running result: `6 + 6 + 0 = 12, so far 2. 8 + 7 + 1 = 16, so far 62. …` (digit lookups across the prompt) |
# | style `careful` | the same, each column first restating what is left of the operands: `Check 386 + 7776: 6 + 6 + 0 = 12, so far 2. Check 38 + 777: …` (every lookup local: the reliable, self-checking style) |
# | self-correction | a share of careful solutions holds one slip caught on the spot: `8 + 7 + 1 = 15. Wait, 8 + 7 + 1 = 16, so far 62.` |
# | style by frame | under the R1-Zero template mostly `direct`; in plain Q/A documents mostly `short` / `careful` |
# | layouts | under the template: `<think>…</think> <answer>…</answer>`, or no tags / a bare answer / `\boxed{}` |
# | language mixing | a share of the step-by-step solutions uses Chinese connectives (`目前` for "so far"), for R1's language-consistency reward |
# | non-reasoning documents | greetings, short instructions, facts about a synthetic world (`r1lib.tasks.general`), for the SFT and preference stages |
#
# Every document is correct; how good each style is comes out of the base model's own samples below, not out of
# the corpus. Because we wrote every document, we know *where* each R1-Zero behaviour comes from: after RL we
# count which of these styles the policy amplified (notebook 01).

# %% tags=["parameters"]
config_path = "experiments/default.yaml"
overrides = {}        # dotted config fields, the same keys as the CLI option --set
preset = None         # model.preset (nano / tiny / small / medium); None keeps the config's value
corpus_size = None    # pretrain.corpus_size
seed = None           # seed
steps = None          # pretrain.steps
students = None       # distill.students: the distillation students' bases (notebook 05), pretrained here; [] skips

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from r1lib.analysis import behaviour_report
from r1lib.config import load_config, named_overrides
from r1lib.corpus import STYLES, build_corpus, style_samples
from r1lib.distillation import student_bases
from r1lib.paths import portable_path
from r1lib.evaluation import evaluate_model, held_out
from r1lib.pretrain import base_model_report, build_base_model, skill_problems
from r1lib.tracking import atomic_write_json, plot_metrics, read_metrics

cfg = load_config(config_path, named_overrides(overrides, {"model.preset": preset, "pretrain.corpus_size": corpus_size,
                                                           "seed": seed, "pretrain.steps": steps,
                                                           "distill.students": students or None}),
                  notebook="00_base_model")
out_dir = cfg.stage_path("base_model")
out_dir.mkdir(parents=True, exist_ok=True)
print(cfg.name, cfg.model.preset, cfg.tasks.mix, cfg.pretrain.model_dump(exclude={"corpus"}))

# %% [markdown]
# ## The corpus: one document of each kind

# %%
preview = build_corpus(min(2000, cfg.pretrain.corpus_size), mix=cfg.tasks.mix, difficulty=tuple(cfg.tasks.difficulty),
                       seed=cfg.seed, cfg=cfg.pretrain.corpus)
for style, text in style_samples(preview).items():
    print(f"--- {style} ---\n{text}\n")

# %% [markdown]
# ## Tokenizer + pretraining (checkpoints every `pretrain.checkpoint_every` steps; re-running resumes)
#
# Then the measured proportions of the whole corpus: styles by frame, language mixing, self-corrections.

# %%
build = build_base_model(cfg)
stats = build["corpus"]
display(pd.DataFrame({"under the R1-Zero template": stats["styles_under_template"], "plain Q/A": stats["styles_plain"],
                      "all": stats["styles"]}).T.style.format("{:.1%}"))
{k: v for k, v in build.items() if k not in ("corpus", "corpus_config", "model_dir", "metrics_log")}

# %%
log = read_metrics(build["metrics_log"])
fig = plot_metrics(log, ["loss"], title=f"pretraining loss ({build['params']:,} parameters)")
fig.savefig(out_dir / "pretrain_loss.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## The base model under the R1-Zero template (held-out test problems)
#
# Paper protocol (docs/paper.md §5): temperature 0.6, top-p 0.95, pass@1 averaged over the k samples, pass@k with
# the unbiased estimator. Every sample is kept, so that we can see what the base model does: which style it
# picks, how accurate each style is, whether the single-digit facts it writes are right.

# %%
k = cfg.eval.k
result = evaluate_model(cfg, build["model_dir"], held_out(cfg, "test"), progress=True)
curve = result.curve(list(range(1, k + 1)))
behaviour = behaviour_report(result.records)
harder = cfg.tasks.harder_difficulty()
harder_result = evaluate_model(cfg, build["model_dir"], held_out(cfg, "harder"), progress=True) if harder else None
report = base_model_report(build, result.summary, curve, behaviour=behaviour,
                           harder_summary=harder_result.summary if harder_result else None)
atomic_write_json(out_dir / "metrics.json", report)
atomic_write_json(out_dir / "corpus_stats.json", build["corpus"])
{key: report[key] for key in ("pass_at_1", "pass_at_16", "format_rate", "mean_length", "reflection_rate",
                              "step_fact_accuracy", "pretrain_seconds", "targets_met")}

# %% [markdown]
# ## Does the base model have a skill for RL to amplify?
#
# Per style of the base's own samples: how often it is picked, how often it is right, how long it is. RL needs a
# style that is **rarely picked but reliable**: then pass@1 is low, pass@k is high, and the gap is a skill.

# %%
table = pd.DataFrame(behaviour["styles"]).T[["share", "accuracy", "mean_length", "n"]].astype(float)
display(table.style.format({"share": "{:.1%}", "accuracy": "{:.1%}", "mean_length": "{:.0f}", "n": "{:.0f}"}, na_rep="—"))
facts = behaviour["facts"]
print(f"written single-digit facts: {facts['n']}, correct: "
      f"{'—' if facts['accuracy'] is None else format(facts['accuracy'], '.1%')}")
aha = behaviour["aha"]
print(f"of {aha['n']} samples: {aha['attempts']} announce a correction ('Wait'), {aha['with_slip']} really fix a wrong "
      f"step, {aha['count']} of them with a correct answer ('aha')")
if harder_result is not None:
    print(f"harder split (difficulty {harder}, one more digit, never seen): pass@1 {harder_result.summary['pass@1']:.1%}, "
          f"pass@{k} {harder_result.summary[f'pass@{k}']:.1%}")
problems = skill_problems(report)
if problems:
    display(Markdown("## ⚠️ PRETRAINING DID NOT PRODUCE THE SKILL\n\n" + "\n".join(f"- {p}" for p in problems)
                     + "\n\nR1-Zero (notebook 01) will have nothing to amplify. Pretrain longer (`pretrain.steps`), "
                       "try another `seed`, or check the corpus above."))
else:
    display(Markdown(f"**The skill is there:** the careful style is right {report['style_accuracy']['careful']:.0%} "
                     f"of the time but picked in only {report['style_share']['careful']:.0%} of the samples."))

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
ks = sorted(curve)
axes[0].plot(ks, [curve[j] for j in ks], marker=".")
axes[0].set_xscale("log", base=2); axes[0].set_xlabel("k"); axes[0].set_ylabel("pass@k"); axes[0].set_ylim(0, 1)
axes[0].set_title("base model pass@k (T=0.6, top-p 0.95)")
x = range(len(STYLES))
axes[1].bar([i - 0.2 for i in x], [stats["styles_under_template"][s] for s in STYLES], width=0.4,
            label="corpus, under the template")
axes[1].bar([i + 0.2 for i in x], [report["style_share"][s] for s in STYLES], width=0.4, label="base-model samples")
axes[1].set_xticks(list(x), STYLES); axes[1].set_ylabel("share"); axes[1].legend(fontsize=8)
axes[1].set_title("which style the base picks")
axes[2].bar(list(x), [report["style_accuracy"][s] or 0 for s in STYLES], color="tab:green")  # never sampled: 0
axes[2].set_xticks(list(x), STYLES); axes[2].set_ylabel("accuracy"); axes[2].set_ylim(0, 1)
axes[2].set_title("how often each style is right")
fig.tight_layout(); fig.savefig(out_dir / "pass_at_k_and_styles.png", dpi=100, bbox_inches="tight")
atomic_write_json(out_dir / "style_distribution.json", {"corpus_under_template": stats["styles_under_template"],
                                                        "corpus_plain": stats["styles_plain"],
                                                        "base_model_samples": report["style_share"]});

# %% [markdown]
# ## Samples of the base model

# %%
for r in result.records[:4]:
    print(f"[{r['task']}] gold={r['gold']!r} correct={r['correct'][:3]}")
    for c in r["completions"][:3]:
        print("   ", c[:400].replace("\n", " "))

# %% [markdown]
# ## The students' base models for distillation (notebook 05)
#
# The paper distils R1 into open base models smaller than the teacher (Qwen2.5-Math-1.5B, 7B, ...). Ours are the
# presets of `distill.students`, pretrained here on the same corpus, with the same tokenizer and `pretrain`
# settings as the base model above; the experiment's own preset is that base model itself, not trained again.

# %%
if students == []:
    print("students: [] -> skipped")
else:
    student_list = student_bases(cfg, progress=True)
    student_info = [{"student": s.name, "params": s.params, "source": s.source, "pretrain_seconds": s.pretrain_seconds,
                     "path": portable_path(s.path, cfg.root)} for s in student_list]
    atomic_write_json(out_dir / "students.json", student_info)
    display(pd.DataFrame(student_info).set_index("student"))
