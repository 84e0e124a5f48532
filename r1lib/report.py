"""A shareable report of one experiment: a self-contained HTML file, and optionally a W&B Report.

``python -m r1lib report EXPERIMENT [--out PATH] [--wandb]`` (``EXPERIMENT``: a name in ``experiments/`` or a YAML
path) reads only committed result files: ``<results_dir>/run_summary.json`` and ``config.yaml`` (what
``python -m r1lib run`` writes), and each stage's ``<stages_dir>/<stage>/metrics.json``, Markdown tables and
figures. The HTML (default ``<results_dir>/report.html``) embeds every figure as a base64 PNG, so it can be mailed
or attached as one file. A stage whose files are missing gets a "not run" section instead of an error.

Beside our numbers it puts the paper's where there is a counterpart, each labelled with its section of
``docs/paper.md`` (the repository's fact sheet of the paper). The benchmarks differ (the paper: AIME 2024 and
others with a 671B model; here: a synthetic digits task with a sub-million-parameter model), so the comparison is
of the *shape* of each result (what rises, what beats what), not of levels.

Held-out completions come from the RL runs' ``tables/eval_completions.jsonl`` (:meth:`r1lib.tracking.Tracker.
log_table`) or, for runs made before that table existed, ``eval_samples/step_*.jsonl``; ``runs/`` is not committed,
so on a fresh clone that section says where the files would be.

``--wandb`` also builds a W&B Report of the same content with ``wandb-workspaces`` (``wandb_workspaces.reports.v2``):
the same headings and tables, plus panels of the experiment's runs (a ``Runset`` filtered by the run group, one per
stage by job type). It needs the network and an API key; without them it says why and only the HTML is written.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import netrc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "PAPER",
    "Code",
    "Figure",
    "Para",
    "Section",
    "Table",
    "build_sections",
    "build_wandb_report",
    "find_experiment_config",
    "render_html",
    "wandb_report_skip_reason",
    "write_report",
]

REPORT_FILE = "report.html"
COMPLETIONS_TABLE = "eval/completions"  # the key RLTrainer logs its held-out completions under (r1lib.training.rl)
MAX_COMPLETION_ROWS = 12


# --------------------------------------------------------------------------------------------
# The paper's numbers (docs/paper.md). tests/test_report.py checks each value still appears in that file.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperNumber:
    """One number of the paper: ``value`` as printed in docs/paper.md, ``source`` its section there."""

    what: str
    value: str
    source: str


PAPER: dict[str, list[PaperNumber]] = {
    "r1_zero": [
        PaperNumber("pass@1, start → end of RL (AIME 2024)", "15.6 → 71.0", "docs/paper.md §7 (V1 pp.3, 6)"),
        PaperNumber("pass@1 at the end, v2 (AIME 2024)", "77.9", "docs/paper.md §6.1 (V2 Tables 3, 12)"),
        PaperNumber("cons@64 at the end (AIME 2024)", "86.7", "docs/paper.md §6.1 (V1 Table 2)"),
        PaperNumber("mean response length (tokens), start → ~step 8,400", "~500 → ~9,500",
                    "docs/paper.md §7 (read off V1 Fig. 3)"),
        PaperNumber("reflection-word frequency over training", "5 to 7 times", "docs/paper.md §7 (V2 C.2, Fig. 9)"),
    ],
    # (step, pass@1) read off the v1 Fig. 2 plot: approximate
    "r1_zero_curve": [
        PaperNumber("200", "0.16", "docs/paper.md §7"), PaperNumber("2,000", "0.38", "docs/paper.md §7"),
        PaperNumber("4,000", "0.60", "docs/paper.md §7"), PaperNumber("6,000", "0.64", "docs/paper.md §7"),
        PaperNumber("8,400", "0.71", "docs/paper.md §7"),
    ],
    "ablation_grpo_vs_ppo": [
        PaperNumber("GRPO", "the reference", "docs/paper.md §8 (V2 A.3)"),
        PaperNumber("PPO (lambda=0.95)", "clearly worse than GRPO", "docs/paper.md §8 (V2 A.3)"),
        PaperNumber("PPO (lambda=1.0)", "comes close to GRPO", "docs/paper.md §8 (V2 A.3)"),
    ],
    "ablation_length": [
        PaperNumber("max response length", "32,768, then 65,536 from step 8,200", "docs/paper.md §2.2"),
    ],
    # v2 Table 3: AIME 2024 pass@1 and IF-Eval per stage
    "r1_pipeline": [
        PaperNumber("r1_zero", "77.9 / 46.6", "docs/paper.md §3 (V2 Table 3)"),
        PaperNumber("dev1", "59.0 / 71.7", "docs/paper.md §3 (V2 Table 3)"),
        PaperNumber("dev2", "74.0 / 72.0", "docs/paper.md §3 (V2 Table 3)"),
        PaperNumber("dev3", "78.1 / 78.1", "docs/paper.md §3 (V2 Table 3)"),
        PaperNumber("r1", "79.8 / 83.3", "docs/paper.md §3 (V2 Table 3)"),
    ],
    "distillation": [
        PaperNumber("Distill-Qwen-1.5B (smallest student), AIME24 pass@1 / cons@64", "28.9 / 52.7",
                    "docs/paper.md §4 (V1 Table 5)"),
        PaperNumber("Distill-Qwen-32B, AIME24 pass@1 / cons@64", "72.6 / 83.3", "docs/paper.md §4 (V1 Table 5)"),
        PaperNumber("Qwen-32B with R1-Zero-style RL, AIME24 pass@1", "47.0", "docs/paper.md §4 (V1 Table 6)"),
        PaperNumber("Distill-Qwen-32B (SFT only), AIME24 pass@1", "72.6", "docs/paper.md §4 (V1 Table 6)"),
    ],
    "evaluation": [
        PaperNumber("sampling", "temperature 0.6, top-p 0.95, k = 64 for AIME", "docs/paper.md §5 (V2 D.1)"),
    ],
}


# --------------------------------------------------------------------------------------------
# Report content: renderer-neutral blocks (HTML here, W&B Report blocks in build_wandb_report)
# --------------------------------------------------------------------------------------------


@dataclass
class Para:
    """A paragraph of plain text."""

    text: str


@dataclass
class Table:
    """A table of strings; ``caption`` says where the numbers come from."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    def markdown(self) -> str:
        """The table as Markdown (the W&B Report shows it in a MarkdownBlock)."""
        def cell(value: str) -> str:
            return str(value).replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(cell(c) for c in self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + (f"\n\n*{self.caption}*" if self.caption else "")


@dataclass
class Figure:
    """A PNG figure (raw bytes), embedded in the HTML as base64."""

    png: bytes
    caption: str


@dataclass
class Code:
    """Preformatted text (the resolved config)."""

    text: str
    language: str = "yaml"


Block = Para | Table | Figure | Code


@dataclass
class Section:
    """One section of the report. ``ran`` False: its result files are missing (the section says "not run").
    ``job_type`` and ``metrics``: the W&B stage whose runs the W&B Report plots (``metrics`` against the step)."""

    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    ran: bool = True
    job_type: str | None = None
    metrics: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Reading results
# --------------------------------------------------------------------------------------------


def _pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage string ('—' when missing or not a finite number)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{100 * v:.{digits}f}"


def _num(value: Any, fmt: str = ",.1f") -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else format(v, fmt)


def _checks(checks: Mapping[str, Any]) -> str:
    """``{"claim": True}`` or ``{"claim": {"holds": bool, "measured": str}}`` as 'claim: holds (measured)'."""
    out = []
    for name, value in checks.items():
        if isinstance(value, Mapping):
            holds, measured = value.get("holds"), value.get("measured")
        else:
            holds, measured = value, None
        verdict = "holds" if holds is True else "does not hold" if holds is False else str(holds)
        out.append(f"{name.replace('_', ' ')}: {verdict}" + (f" ({measured})" if measured else ""))
    return "; ".join(out)


def _read_json(path: Path) -> Any:
    """JSON from ``path``; a malformed file is an error naming it (a missing one is handled by the caller)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def _markdown_table(path: Path) -> Table:
    """A Markdown pipe table (the notebooks' ``*.md`` tables) as a :class:`Table`; other lines become the caption.

    Hand-written because the tables are the notebooks' own simple pipe tables (no nested pipes, no alignment
    beyond ``:---``) and a Markdown package is not a dependency."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.strip().startswith("|")]
    rows = [r for r in rows if not all(set(c) <= set(":- ") for c in r)]  # drop the |---|---:| rule
    if not rows:
        raise ValueError(f"{path}: no Markdown table found")
    notes = " ".join(line.strip() for line in lines if line.strip() and not line.strip().startswith("|"))
    return Table(columns=rows[0], rows=rows[1:], caption=notes)


def _figure(path: Path, caption: str) -> Figure | None:
    return Figure(path.read_bytes(), caption) if path.is_file() else None


def _shown(path: Path, root: Path) -> str:
    """A path as shown in the report: relative to the repository root (no machine paths in a shared file)."""
    from r1lib.paths import portable_path

    return portable_path(path, root)


def _stage_metrics(cfg: Any, stage_name: str) -> tuple[Path, Path, dict[str, Any] | None]:
    """A stage's folder, its ``metrics.json`` and the parsed file (None when the stage has not run)."""
    stage = cfg.stage_path(stage_name)
    path = stage / "metrics.json"
    return stage, path, (_read_json(path) if path.is_file() else None)


def _not_run(section: Section, *paths: str) -> Section:
    section.ran = False
    section.blocks = [Para(f"not run: {', '.join(paths)} not found (run the notebook, or the whole experiment "
                           "with `python -m r1lib run`).")]
    return section


def _png_of(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _summary_section(cfg: Any) -> Section:
    sec = Section("summary", "Run summary")
    path = cfg.results_path / "run_summary.json"
    if not path.is_file():
        return _not_run(sec, _shown(path, cfg.root))
    s = _read_json(path)
    wall = s.get("wall_seconds")
    sec.blocks.append(Para(
        f"Experiment {s.get('experiment', cfg.name)} ({s.get('config_path', '?')}), started {s.get('started', '?')}, "
        f"finished {s.get('finished', '?')}: {_num(wall, ',.0f')} s ({_num((wall or 0) / 60, '.1f')} min) on "
        f"{s.get('cpus', '?')} CPUs; all notebooks ok: {s.get('ok')}. Overrides: {s.get('overrides') or 'none'}."))
    rows = [[nb.get("name", "?"), nb.get("status", "?"), _num(nb.get("seconds"), ",.0f"),
             _num((nb.get("seconds") or 0) / 60, ".1f"), (nb.get("error") or "")[:200]]
            for nb in s.get("notebooks", [])]
    sec.blocks.append(Table(["notebook", "status", "seconds", "minutes", "error"], rows,
                            f"Per-notebook wall times ({_shown(path, cfg.root)})."))
    return sec


def _base_model_section(cfg: Any) -> Section:
    sec = Section("base_model", "Base model (notebook 00)", job_type="pretrain", metrics=["loss", "lr"])
    stage, path, m = _stage_metrics(cfg, "base_model")
    if m is None:
        return _not_run(sec, _shown(path, cfg.root))
    k = m.get("k", "k")
    rows = [["pass@1", _pct(m.get("pass_at_1"))], [f"pass@{k}", _pct(m.get(f"pass_at_{k}"))],
            [f"cons@{k}", _pct(m.get("cons_at_k"))], ["format rate", _pct(m.get("format_rate"))],
            ["mean length (tokens)", _num(m.get("mean_length"))], ["parameters", _num(m.get("params"), ",.0f")],
            ["pretraining seconds", _num(m.get("pretrain_seconds"), ",.0f")],
            ["final pretraining loss", _num(m.get("final_loss"), ".3f")]]
    sec.blocks += [
        Table(["metric (held-out synthetic task, %)", "ours"], rows, f"From {_shown(path, cfg.root)}."),
        Para("Paper counterpart: none. The paper starts from DeepSeek-V3-Base (a 671B MoE); here a base model is "
             "pretrained in minutes so that RL has a skill to amplify (README, 'The embedded base model')."),
    ]
    for name, caption in (("pretrain_loss.png", "Pretraining loss."),
                          ("pass_at_k_and_styles.png", "pass@k of the base model and the styles it writes.")):
        fig = _figure(stage / name, caption)
        if fig is not None:
            sec.blocks.append(fig)
    return sec


def _r1_zero_curve(m: Mapping[str, Any]) -> Figure | None:
    """Our held-out pass@1 over the fraction of the run beside the paper's v1 Fig. 2 (read off the plot)."""
    steps, acc = m.get("eval_steps"), m.get("eval_pass_at_1")
    if not steps or not acc or len(steps) != len(acc) or not m.get("steps"):
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    paper = [(float(p.what.replace(",", "")), float(p.value)) for p in PAPER["r1_zero_curve"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([s / m["steps"] for s in steps], acc, marker="o", label="ours: held-out pass@1 (synthetic task)")
    ax.plot([s / paper[-1][0] for s, _ in paper], [a for _, a in paper], marker="s", linestyle="--",
            label="paper: AIME 2024 pass@1 (read off V1 Fig. 2, docs/paper.md §7)")
    ax.set_xlabel("fraction of the RL run (paper: of ~8,400 steps)")
    ax.set_ylabel("pass@1")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("R1-Zero: pass@1 during RL, ours vs the paper")
    return Figure(_png_of(fig), "pass@1 against the fraction of the run; the paper's points are approximate "
                                "readings of a plot and on another benchmark (docs/paper.md §7).")


def _r1_zero_section(cfg: Any) -> Section:
    sec = Section("r1_zero", "R1-Zero: GRPO from the base model (notebook 01)", job_type="r1_zero",
                  metrics=["eval/pass@1", "reward/mean", "length/mean", "kl"])
    stage, path, m = _stage_metrics(cfg, "r1_zero")
    if m is None:
        return _not_run(sec, _shown(path, cfg.root))
    k = m.get("k", "k")
    paper = {p.what: p for p in PAPER["r1_zero"]}

    def pp(what: str) -> list[str]:
        return [paper[what].value, paper[what].source]

    base_ref, final_ref = m.get("base_reflection_rate"), m.get("final_reflection_rate")
    ratio = (f"{final_ref / base_ref:.1f}×" if isinstance(base_ref, (int, float)) and base_ref
             and isinstance(final_ref, (int, float)) else "—")
    rows = [
        [f"pass@1, step 0 → {m.get('steps', '?')}", f"{_pct(m.get('base_pass_at_1'))} → {_pct(m.get('final_pass_at_1'))}",
         *pp("pass@1, start → end of RL (AIME 2024)")],
        ["pass@1 at the end", _pct(m.get("final_pass_at_1")), *pp("pass@1 at the end, v2 (AIME 2024)")],
        [f"cons@{k} at the end", _pct(m.get("final_cons_at_k")), *pp("cons@64 at the end (AIME 2024)")],
        ["mean response length (tokens), start → end",
         f"{_num(m.get('base_mean_length'))} → {_num(m.get('final_mean_length'))}",
         *pp("mean response length (tokens), start → ~step 8,400")],
        ["reflection-word rate, start → end",
         f"{_pct(base_ref)} → {_pct(final_ref)} ({ratio})", *pp("reflection-word frequency over training")],
        ["format rate at the end", _pct(m.get("final_format_rate")), "—", "—"],
        ["training seconds", _num(m.get("train_seconds"), ",.0f"), "—", "—"],
    ]
    sec.blocks.append(Table(["metric", "ours (synthetic task, %)", "paper", "paper source"], rows,
                            f"Ours from {_shown(path, cfg.root)}; the paper's on AIME 2024 with DeepSeek-V3-Base."))
    if m.get("eval_steps") and m.get("eval_pass_at_1"):
        cons = m.get(f"eval_cons_at_{k}") or [None] * len(m["eval_steps"])
        sec.blocks.append(Table(["step", "held-out pass@1 (%)", f"cons@{k} (%)"],
                                [[str(s), _pct(a), _pct(c)] for s, a, c in zip(m["eval_steps"], m["eval_pass_at_1"], cons)],
                                "Held-out checks during RL."))
    curve = _r1_zero_curve(m)
    if curve is not None:
        sec.blocks.append(curve)
    for name, caption in (("fig2_accuracy.png", "Held-out accuracy during RL (the paper's Fig. 2 analogue)."),
                          ("fig3_length.png", "Response length during RL (the paper's Fig. 3 analogue).")):
        fig = _figure(stage / name, caption)
        if fig is not None:
            sec.blocks.append(fig)
    return sec


def _ppo_section(cfg: Any) -> Section:
    sec = Section("ablation_grpo_vs_ppo", "GRPO vs PPO (notebook 02)", job_type="ablation_grpo_vs_ppo",
                  metrics=["eval/pass@1", "reward/mean"])
    stage, path, m = _stage_metrics(cfg, "ablation_grpo_vs_ppo")
    if m is None:
        return _not_run(sec, _shown(path, cfg.root))
    paper = {p.what: p for p in PAPER["ablation_grpo_vs_ppo"]}
    rows = []
    for arm, a in (m.get("methods") or {}).items():
        f = a.get("final_pass_at_1") or {}
        seeds = " / ".join(_pct(v) for v in (f.get("per_seed") or {}).values())
        p = paper.get(arm)
        rows.append([arm, f"{_pct(f.get('mean'))} ± {_pct(f.get('std'))}", seeds, _num(a.get("sec_per_step"), ".2f"),
                     str(a.get("model_copies", "—")), p.value if p else "—", p.source if p else "—"])
    sec.blocks.append(Table(["arm", "final pass@1 mean ± std (%)", "per seed", "s/step", "model copies", "paper",
                             "paper source"], rows,
                            f"Ours from {_shown(path, cfg.root)}; the paper gives no accuracies in its text "
                            "(docs/paper.md §8), only the ordering."))
    verdict = m.get("verdict") or {}
    if verdict:
        sec.blocks.append(Para("The paper's claims checked on our runs: " + _checks(verdict) + "."))
    if m.get("finding"):
        sec.blocks.append(Para(f"Finding: {m['finding']}"))
    fig = _figure(stage / "pass_at_1.png", "Held-out pass@1 over steps, mean and spread over seeds.")
    if fig is not None:
        sec.blocks.append(fig)
    return sec


def _length_section(cfg: Any) -> Section:
    sec = Section("ablation_length", "Length expansion (notebook 03)", job_type="ablation_length",
                  metrics=["eval/pass@1", "truncated_fraction", "length/mean"])
    stage, path, m = _stage_metrics(cfg, "ablation_length")
    if m is None:
        return _not_run(sec, _shown(path, cfg.root))
    rows = [[arm, _pct(a.get("final_pass_at_1")), _pct(a.get("pass_at_1_before_expansion")),
             f"{100 * a['gain_after_expansion']:+.1f}" if isinstance(a.get("gain_after_expansion"), (int, float)) else "—",
             _pct(a.get("max_truncated_fraction_before_expansion")), _num(a.get("final_length"), ".0f"),
             _num(a.get("sec_per_step"), ".2f")]
            for arm, a in (m.get("arms") or {}).items()]
    p = PAPER["ablation_length"][0]
    sec.blocks += [
        Table(["arm", "final pass@1 (%)", "pass@1 at the expansion", "change after it (points)",
               "most truncated before (%)", "final length (tokens)", "s/step"], rows,
              f"Ours from {_shown(path, cfg.root)}: {m.get('steps', '?')} steps, expansion at step "
              f"{m.get('expansion_step', '?')} ({m.get('short_tokens', '?')} → {m.get('long_tokens', '?')} tokens)."),
        Table(["paper", "value", "paper source"], [[p.what, p.value, p.source]],
              "The paper's schedule (of 10,400 steps); the ablation itself is ours, not the paper's."),
    ]
    fig = _figure(stage / "length_expansion.png", "pass@1, truncation and length over steps per arm.")
    if fig is not None:
        sec.blocks.append(fig)
    return sec


def _pipeline_section(cfg: Any) -> Section:
    sec = Section("r1_pipeline", "The four-stage R1 pipeline (notebook 04)", job_type="rl_all_scenarios",
                  metrics=["eval/pass@1", "reward/mean"])
    stage, path, m = _stage_metrics(cfg, "r1_pipeline")
    if m is None:
        return _not_run(sec, _shown(path, cfg.root))
    paper = {p.what: p for p in PAPER["r1_pipeline"]}
    names = {"base": "base", "r1_zero": "R1-Zero", "dev1": "Dev1", "dev2": "Dev2", "dev3": "Dev3", "r1": "R1"}
    rows = []
    for key, label in names.items():
        r = m.get(key)
        if not isinstance(r, Mapping):
            continue
        p = paper.get(key)
        rows.append([label, _pct(r.get("pass_at_1")), _pct(r.get("cons_at_k")), _pct(r.get("format_rate")),
                     _pct(r.get("instruction_following")), _num(r.get("rm_score"), ".3f"),
                     p.value if p else "—", p.source if p else "—"])
    sec.blocks.append(Table(["checkpoint", "pass@1 (%)", f"cons@{m.get('k', 'k')} (%)", "format (%)",
                             "IF, rule-checked (%)", "RM score", "paper: AIME 2024 pass@1 / IF-Eval", "paper source"],
                            rows, f"Ours from {_shown(path, cfg.root)} (the v2 Table 3 analogue)."))
    shape = m.get("shape") or {}
    if shape:
        sec.blocks.append(Para("The paper's shape checked on our stages: " + _checks(shape) + "."))
    fig = _figure(stage / "stages.png", "The stages side by side.")
    if fig is not None:
        sec.blocks.append(fig)
    return sec


def _distill_section(cfg: Any) -> Section:
    from r1lib.distillation import student_label

    students = list(cfg.distill.students)  # the W&B panels show the first student's SFT runs (r1lib.tracking job types)
    sec = Section("distillation", "Distillation (notebook 05)",
                  job_type=f"distill_{student_label(students[0])}" if students else "distill", metrics=["train/loss"])
    stage = cfg.stage_path("distillation")
    path = stage / "metrics.json"
    if not path.is_file():
        return _not_run(sec, _shown(path, cfg.root))
    for name, caption in (("table5.md", "Teacher and students (the v1 Table 5 analogue)"),
                          ("table6.md", "Distillation vs RL on the same student (the v1 Table 6 analogue)")):
        if (stage / name).is_file():
            t = _markdown_table(stage / name)
            t.caption = f"{caption}, from {_shown(stage / name, cfg.root)}. {t.caption}".strip()
            sec.blocks.append(t)
    sec.blocks.append(Table(["paper", "value", "paper source"], [[p.what, p.value, p.source] for p in PAPER["distillation"]],
                            "The paper's counterparts: distillation beats RL on the same mid-sized base."))
    fig = _figure(stage / "distillation.png", "Accuracy against training seconds.")
    if fig is not None:
        sec.blocks.append(fig)
    return sec


def _evaluation_section(cfg: Any) -> Section:
    sec = Section("evaluation", "Evaluation (notebook 06)")
    stage = cfg.stage_path("evaluation")
    path = stage / "eval.md"
    if not path.is_file():
        return _not_run(sec, _shown(path, cfg.root))
    t = _markdown_table(path)
    t.caption = f"From {_shown(path, cfg.root)}. {t.caption}".strip()
    p = PAPER["evaluation"][0]
    sec.blocks += [t, Para(f"Protocol: the paper's ({p.value}; {p.source}), with this experiment's eval settings: "
                           f"temperature {cfg.eval.temperature}, top-p {cfg.eval.top_p}.")]
    fig = _figure(stage / "eval_pass_at_k.png", "pass@k per checkpoint and benchmark.")
    if fig is not None:
        sec.blocks.append(fig)
    return sec


def _completion_rows(cfg: Any, run_dir: Path, limit: int) -> tuple[list[dict[str, Any]], str]:
    """The last evaluation's held-out completions of an RL run: its table JSONL when there, else (older runs) its
    ``eval_samples``, whose records carry problem ids only: the texts are regenerated from the experiment's
    held-out split (procedural, so the ids match; an unknown id is shown as is). Returns (rows, source)."""
    from r1lib.tracking import completion_rows, read_table, table_path

    path = table_path(run_dir, COMPLETIONS_TABLE)
    if path.is_file():
        rows = read_table(path)
        last = max((int(r.get("step", 0)) for r in rows), default=0)
        return [r for r in rows if int(r.get("step", 0)) == last][:limit], str(path)
    samples = sorted((run_dir / "eval_samples").glob("step_*.jsonl"))
    if not samples:
        return [], ""
    step = int(samples[-1].stem.split("_")[-1])
    records = [json.loads(line) for line in samples[-1].read_text(encoding="utf-8").splitlines() if line.strip()]
    records = records[:limit]
    from r1lib.evaluation import held_out

    problems = {ex.id: ex.problem for ex in held_out(cfg, "test")}
    prompts = [problems.get(r.get("id"), str(r.get("id", "?"))) for r in records]
    return completion_rows(step, prompts, records), str(samples[-1])


def _completions_section(cfg: Any) -> Section:
    sec = Section("completions", "Held-out completions (R1-Zero, last evaluation)")
    run_dir = cfg.runs_path / "r1_zero"
    rows, source = _completion_rows(cfg, run_dir, MAX_COMPLETION_ROWS)
    if not rows:
        sec.ran = False
        sec.blocks.append(Para(f"not available: no {COMPLETIONS_TABLE!r} table or eval_samples in "
                               f"{_shown(run_dir, cfg.root)} (runs/ is not committed; they appear after a local run)."))
        return sec
    cols = ["step", "prompt", "completion", "answer", "gold", "correct", "length"]
    sec.blocks.append(Table(cols, [[str(r.get(c, "")) for c in cols] for r in rows],
                            f"The first {len(rows)} rows (one sample per problem) from {_shown(Path(source), cfg.root)}"
                            + (" (a run from before the table: prompts regenerated from the held-out split)."
                               if "eval_samples" in source else ".")))
    return sec


def _config_section(cfg: Any) -> Section:
    import yaml

    from r1lib.config import config_to_dict

    sec = Section("config", "Resolved configuration")
    path = cfg.results_path / "config.yaml"
    if path.is_file():
        text, where = path.read_text(encoding="utf-8"), f"as run ({_shown(path, cfg.root)})"
    else:
        text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
        where = "as loaded now (no config.yaml in results: the experiment has not been run)"
    sec.blocks += [Para(f"The experiment's configuration {where}."), Code(text)]
    return sec


SECTION_BUILDERS: tuple[Callable[[Any], Section], ...] = (
    _summary_section, _base_model_section, _r1_zero_section, _ppo_section, _length_section, _pipeline_section,
    _distill_section, _evaluation_section, _completions_section, _config_section,
)


def build_sections(cfg: Any) -> list[Section]:
    """Every section of the report of ``cfg`` (an ``ExperimentConfig``), from its committed result files."""
    return [build(cfg) for build in SECTION_BUILDERS]


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .5em;
vertical-align:top}th{background:#f0f0f0}td{max-width:420px;overflow-wrap:anywhere}
caption{caption-side:bottom;font-size:.85em;color:#555;text-align:left;padding-top:.3em}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.8em;max-height:40em}
.missing{color:#a33;font-style:italic}nav ul{columns:2}
"""


def _html_block(block: Block) -> str:
    esc = html.escape
    if isinstance(block, Para):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{esc(str(c))}</th>" for c in block.columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in block.rows)
        cap = f"<caption>{esc(block.caption)}</caption>" if block.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure><img alt="{esc(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{esc(block.caption)}</figcaption></figure>")
    if isinstance(block, Code):
        return f'<pre class="{esc(block.language)}">{esc(block.text)}</pre>'
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(cfg: Any, sections: Sequence[Section], generated: str | None = None) -> str:
    """The self-contained HTML of the report (no external files, scripts or fonts)."""
    esc = html.escape
    generated = generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(f'<li><a href="#{s.key}">{esc(s.title)}</a>{"" if s.ran else " (not run)"}</li>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>r1lib report: {esc(cfg.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>r1lib: experiment <code>{esc(cfg.name)}</code></h1>",
        f"<p>A DeepSeek-R1 reproduction at small scale (r1lib). Generated {esc(generated)} by "
        f"<code>python -m r1lib report {esc(cfg.name)}</code> from the committed result files. The paper's numbers "
        "(docs/paper.md, with the section each comes from) stand beside ours where there is a counterpart; they are "
        "on other benchmarks (AIME 2024, ...) with models ~10<sup>5</sup> times larger, so compare shapes, not "
        "levels.</p>",
        f"<nav><ul>{toc}</ul></nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>')
        for block in s.blocks:
            out = _html_block(block)
            parts.append(out.replace("<p>", '<p class="missing">', 1) if not s.ran and isinstance(block, Para) else out)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# W&B Report (wandb-workspaces)
# --------------------------------------------------------------------------------------------


def _wandb_api_key() -> str | None:
    """The W&B API key: ``WANDB_API_KEY``, else the one ``wandb login`` stored in ~/.netrc (None if neither)."""
    key = os.environ.get("WANDB_API_KEY")
    if key:
        return key
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        auth = netrc.netrc().authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return None
    return auth[2] if auth and auth[2] else None


def wandb_report_skip_reason() -> str | None:
    """Why a W&B Report cannot be published from here (None: it can be tried)."""
    mode = os.environ.get("WANDB_MODE", "")
    if mode in ("offline", "disabled", "dryrun"):
        return f"WANDB_MODE={mode}: a W&B Report needs the W&B server (unset WANDB_MODE or set it to 'online')"
    if _wandb_api_key() is None:
        return ("no W&B API key (set WANDB_API_KEY or run `wandb login`); offline runs can be uploaded first with "
                "`wandb sync` (docs/tracking.md)")
    try:
        import wandb_workspaces.reports.v2  # noqa: F401
    except ImportError:
        return "wandb-workspaces is not installed (pip install wandb-workspaces)"
    return None


def build_wandb_report(cfg: Any, sections: Sequence[Section], *, entity: str | None = None) -> Any:
    """A ``wandb_workspaces.reports.v2.Report`` with the content of the HTML report (not saved).

    Headings (H1, H2), paragraphs (P), tables (MarkdownBlock), the config (CodeBlock) and, for each stage section,
    a PanelGrid of line plots over a Runset of the experiment's runs (filtered by run group and the stage's job
    type). Figures stay in the HTML: a W&B Report embeds images by URL only, and its panels plot the same data live.
    """
    import wandb_workspaces.reports.v2 as wr

    group = cfg.tracking.group or cfg.name
    project = cfg.tracking.project
    entity_kw = {"entity": entity} if entity else {}
    blocks: list[Any] = [
        wr.H1(f"r1lib: experiment {cfg.name}"),
        wr.P(f"DeepSeek-R1 reproduced at small scale (r1lib). Runs: W&B project {project}, group {group} (one job "
             "type per stage). The paper's numbers (docs/paper.md) stand beside ours where there is a counterpart; "
             "they are on other benchmarks with far larger models, so compare shapes, not levels."),
        wr.PanelGrid(runsets=[wr.Runset(project=project, name=f"{group}: all runs",
                                        filters=f"Metric('Group') == '{group}'", **entity_kw)],
                     panels=[wr.RunComparer(diff_only="split")]),
    ]
    for s in sections:
        blocks.append(wr.H2(s.title))
        for block in s.blocks:
            if isinstance(block, Para):
                blocks.append(wr.P(block.text))
            elif isinstance(block, Table):
                blocks.append(wr.MarkdownBlock(text=block.markdown()))
            elif isinstance(block, Code):
                blocks.append(wr.CodeBlock(code=block.text, language=block.language))
        if s.ran and s.job_type and s.metrics:
            runset = wr.Runset(project=project, name=f"{group}: {s.job_type}",
                               filters=f"Metric('Group') == '{group}' and Metric('JobType') == '{s.job_type}'",
                               **entity_kw)
            panels: list[Any] = [wr.LinePlot(title=m, x="Step", y=[m]) for m in s.metrics]
            if s.key == "r1_zero":
                panels.append(wr.WeavePanelSummaryTable(table_name=COMPLETIONS_TABLE))
            blocks.append(wr.PanelGrid(runsets=[runset], panels=panels))
    return wr.Report(project=project, title=f"r1lib: {cfg.name}",
                     description=f"Generated by `python -m r1lib report {cfg.name} --wandb`.", blocks=blocks, **entity_kw)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def find_experiment_config(experiment: str | os.PathLike[str], root: Path | None = None) -> Path:
    """``experiment`` as a YAML path, or as a name: ``experiments/<name>.yaml`` under ``root`` (default: the
    project root of the working directory). A clear error lists the experiments there."""
    from r1lib.config import ConfigError, find_project_root

    given = Path(experiment)
    if given.suffix in (".yaml", ".yml") or given.is_file():
        if not given.is_file():
            raise ConfigError(f"experiment config not found: {given}")
        return given
    folder = (root or find_project_root(Path.cwd())) / "experiments"
    path = folder / f"{experiment}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"no experiment named {str(experiment)!r}: {path} not found (experiments: "
                          f"{', '.join(names) or 'none'})")
    return path


def write_report(experiment: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                 wandb: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the HTML report of ``experiment`` (default ``<results_dir>/report.html``) and, with ``wandb``, publish
    the W&B Report when possible. Returns ``{"html", "sections", "not_run", "wandb_url", "wandb_skipped"}``."""
    from r1lib.config import load_config
    from r1lib.tracking import atomic_write_text

    cfg = load_config(find_experiment_config(experiment))
    sections = build_sections(cfg)
    path = Path(out) if out is not None else cfg.results_path / REPORT_FILE
    atomic_write_text(path, render_html(cfg, sections))
    not_run = [s.key for s in sections if not s.ran]
    say(f"report: {path} ({path.stat().st_size / 1024:.0f} KiB, {len(sections)} sections"
        + (f"; not run: {', '.join(not_run)}" if not_run else "") + ")")
    result: dict[str, Any] = {"html": path, "sections": [s.key for s in sections], "not_run": not_run,
                              "wandb_url": None, "wandb_skipped": None}
    if wandb:
        reason = wandb_report_skip_reason()
        if reason is not None:
            result["wandb_skipped"] = reason
            say(f"W&B Report skipped: {reason}")
        else:
            report = build_wandb_report(cfg, sections, entity=os.environ.get("WANDB_ENTITY"))
            try:
                report.save()
            except Exception as exc:  # noqa: BLE001 - network / auth / API errors of W&B: the HTML is written anyway
                result["wandb_skipped"] = f"saving the W&B Report failed ({type(exc).__name__}: {exc})"
                say(f"W&B Report not saved: {result['wandb_skipped']}")
            else:
                result["wandb_url"] = report.url
                say(f"W&B Report: {report.url}")
    return result
