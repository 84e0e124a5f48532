"""Distillation (docs/paper.md §4; v1 §2.4 and Tables 5-6, v2 B.4.3): the R1 analogue's verified traces into
smaller students by SFT alone, and R1-Zero-style RL on the smallest student for comparison.

    R1 analogue  ──samples on training prompts, only verified ones kept, + non-reasoning rows──▶ traces
    each student ──TRL SFTTrainer on the traces (one seed; the first student: every seed)──────▶ distilled
    1st student  ──GRPO from its base: notebook 01's engine, template and rewards, every seed──▶ student-Zero

The paper's students are open dense models (Qwen2.5-Math-1.5B ... Llama-3.3-70B); ours are size presets
pretrained on the teacher base's own corpus and tokenizer (:func:`student_bases`), or Hugging Face checkpoints
at the real scale. The paper's data are the ~800k rows of stage 3 ("curated with DeepSeek-R1"); ours are the final
R1 analogue's own samples on fresh training prompts with stage 3's filters (DEVIATION: the model that is distilled
writes every trace), or a file of verified traces (``distill.data_from``: OpenR1-Math-220k, Mixture-of-Thoughts).

Everything resumes: a finished SFT, RL run or data set is reused, so rerunning notebook 05 only does what is
missing. The compute of each side of the v1 Table 6 comparison is measured, not assumed: training seconds and
training tokens (tokens that receive a loss: the assistant tokens of every SFT epoch; the sampled completion
tokens of every RL step); the teacher's sampling is reported apart (it is paid once for all students).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from r1lib.tracking import atomic_write_json

__all__ = ["Student", "DistillationResult", "student_label", "teacher_path", "student_bases",
           "student_base_path", "verified_traces",
           "load_traces", "teacher_data", "distill_student", "rl_compute", "run_distillation", "distillation_metrics",
           "table5_markdown", "table6_markdown", "row_format", "verdict"]

#: Why an external trace is dropped (:func:`verified_traces`).
TRACE_REASONS = ("unverified", "no_answer", "wrong", "no_reasoning", "malformed")


@dataclass
class Student:
    """One student base model: ``name`` (a preset or the checkpoint's name), its folder or hub id, parameters,
    where it comes from (``pretrained``: pretrained here on the corpus; ``teacher_base``: the teacher's own base
    model; ``checkpoint``: a given Hugging Face model) and the pretraining seconds it cost (0 if reused)."""

    name: str
    path: str
    params: int
    source: str
    pretrain_seconds: float = 0.0


@dataclass
class DistillationResult:
    """Everything notebook 05 reports; :func:`distillation_metrics` turns it into ``metrics.json``."""

    teacher: dict[str, Any]
    data: dict[str, Any]
    students: list[Student]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)       # label -> table row
    sft: dict[str, dict[str, Any]] = field(default_factory=dict)        # label -> SFT cost
    rl: dict[str, dict[str, Any]] = field(default_factory=dict)         # label -> RL cost
    models: dict[str, str] = field(default_factory=dict)                # label -> model folder


def student_label(name: str) -> str:
    """A folder-safe label for a student (``Qwen/Qwen2.5-Math-1.5B`` -> ``Qwen2.5-Math-1.5B``)."""
    return Path(name.rstrip("/")).name


def teacher_path(cfg: Any) -> str:
    """``distill.teacher`` when set, else notebook 04's R1 analogue."""
    if cfg.distill.teacher:
        local = cfg.root / cfg.distill.teacher
        return str(local) if local.exists() else cfg.distill.teacher
    return str(cfg.runs_path / "r1_pipeline" / "r1" / "mixed" / "policy")


def _params_of(path: str) -> int:
    """Parameters of the model at ``path`` (tied embeddings once), counted on the meta device: no weights loaded."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for p in model.parameters())


def student_bases(cfg: Any, *, progress: bool = False) -> list[Student]:
    """The students' base models in ``distill.students`` order. A preset is pretrained with the experiment's
    ``pretrain`` settings on the teacher base's corpus and with its tokenizer into
    ``<runs_dir>/students/<preset>/base_model`` (resumed or reused when there); the experiment's own
    ``model.preset`` is the teacher's base itself; anything else is a Hugging Face folder or hub id."""
    from r1lib.pretrain import build_base_model

    out = []
    for name in cfg.distill.students:
        path, source = student_base_path(cfg, name)
        if source == "teacher_base" and not (Path(path) / "config.json").exists():
            raise FileNotFoundError(f"distill.students: {name!r} is the teacher's base model, which is missing at "
                                    f"{path}; run notebook 00 first")
        if source != "pretrained" or (Path(path) / "config.json").exists():
            out.append(Student(name, path, _params_of(path), source))
            continue
        tok = cfg.base_model if (Path(cfg.base_model) / "tokenizer.json").exists() else None
        t0 = time.perf_counter()
        build = build_base_model(cfg, preset=name, name=f"students/{name}/base_model", tokenizer_from=tok,
                                 progress=progress)
        out.append(Student(name, build["model_dir"], build["params"], "pretrained", time.perf_counter() - t0))
    return out


def student_base_path(cfg: Any, name: str) -> tuple[str, str]:
    """Where the base model of student ``name`` lives, and its source: a preset other than the experiment's own is
    pretrained into ``<runs_dir>/students/<preset>/base_model`` (``pretrained``); the experiment's own preset is
    the teacher's base (``teacher_base``); anything else is a Hugging Face folder or hub id (``checkpoint``)."""
    from r1lib.config import MODEL_PRESETS

    if name not in MODEL_PRESETS:
        local = cfg.root / name
        return (str(local) if local.exists() else name), "checkpoint"
    if name == cfg.model.preset and not cfg.model.path:
        return cfg.base_model, "teacher_base"
    return str(cfg.runs_path / "students" / name / "base_model"), "pretrained"


# --------------------------------------------------------------------------------------------
# Traces: the teacher's samples, or a file of verified traces
# --------------------------------------------------------------------------------------------


def _chat(problem: str, response: str, source: str) -> dict[str, Any]:
    from r1lib.stage_data import chat_row

    return chat_row(problem, response, source=source, task="external")


def verified_traces(rows: Sequence[dict[str, Any]], *, where: str = "traces") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Chat rows for SFT from a file of teacher traces, keeping only verified-correct ones. Three layouts:

    - ``messages`` (a user turn, then the assistant's trace): kept as they are, already verified by whoever built
      the set (open-r1/Mixture-of-Thoughts); a list without an assistant turn is ``malformed``;
    - ``problem`` + ``generations`` (a list) with ``correctness_math_verify`` (a list of bools): one row per
      generation marked correct, the others ``unverified`` (open-r1/OpenR1-Math-220k);
    - ``problem`` + ``solution`` (or ``response``) + ``answer``: kept when the solution's final answer (last
      ``\\boxed{}`` or ``<answer>``) equals ``answer`` (r1lib's grader), else ``wrong`` / ``no_answer``.

    A trace without a ``</think>`` reasoning block is dropped as ``no_reasoning`` in the last two layouts (the
    students learn to reason, not to answer). Returns the rows and ``{"rows", "kept", "dropped": {reason: n}}``.
    A row in none of the layouts raises ``ValueError`` naming its index and its fields.
    """
    from r1lib.grading import extract_answer, is_equivalent

    kept, dropped = [], Counter()
    for i, row in enumerate(rows):
        if row.get("messages") is not None:
            msgs = list(row["messages"])
            if not msgs or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs) \
                    or msgs[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in msgs):
                dropped["malformed"] += 1
                continue
            kept.append({"messages": [{"role": m["role"], "content": m["content"]} for m in msgs],
                         "source": "external", "task": "external"})
            continue
        problem = row.get("problem") or row.get("question")
        if not problem:
            raise ValueError(f"{where}: row {i} has none of the layouts (messages | problem + generations | problem "
                             f"+ solution + answer); its fields: {sorted(row)}")
        if row.get("generations") is not None:
            gens = list(row["generations"])
            flags = row.get("correctness_math_verify")
            if flags is None or len(flags) != len(gens):
                raise ValueError(f"{where}: row {i} has 'generations' but no 'correctness_math_verify' list of the "
                                 f"same length (got {None if flags is None else len(flags)} for {len(gens)})")
            for text, ok in zip(gens, flags):
                if not ok:
                    dropped["unverified"] += 1
                elif "</think>" not in text:
                    dropped["no_reasoning"] += 1
                else:
                    kept.append(_chat(problem, text, "external"))
            continue
        text = row.get("solution") or row.get("response")
        if text is None or row.get("answer") is None:
            raise ValueError(f"{where}: row {i} has a problem but neither 'generations' nor 'solution'/'response' "
                             f"+ 'answer'; its fields: {sorted(row)}")
        pred = extract_answer(text)
        if pred is None:
            dropped["no_answer"] += 1
        elif not is_equivalent(pred, str(row["answer"])):
            dropped["wrong"] += 1
        elif "</think>" not in text:
            dropped["no_reasoning"] += 1
        else:
            kept.append(_chat(problem, text, "external"))
    n = len(kept) + sum(dropped.values())
    return kept, {"traces": n, "kept": len(kept), "dropped": {r: int(dropped.get(r, 0)) for r in TRACE_REASONS}}


def load_traces(cfg: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``distill.data_from`` (a .jsonl/.json/.parquet file, a ``save_to_disk`` folder or a hub dataset) through
    :func:`verified_traces`, at most ``distill.data_limit`` source rows."""
    import datasets

    d = cfg.distill
    src = d.data_from
    local = cfg.root / src
    path = local if local.exists() else Path(src).expanduser()
    if path.is_dir() and (path / "dataset_info.json").exists():
        ds = datasets.load_from_disk(str(path))
    elif path.is_file():
        kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            raise ValueError(f"distill.data_from: {src} is not a .jsonl, .json or .parquet file")
        ds = datasets.load_dataset(kind, data_files=str(path), split="train")
    elif "/" in src and not src.startswith((".", "/")):
        ds = datasets.load_dataset(src, d.data_config, split=d.data_split)
    else:
        raise FileNotFoundError(f"distill.data_from: {src} is neither a file, a datasets folder nor a hub id")
    if d.data_limit is not None and len(ds) > d.data_limit:
        ds = ds.select(range(d.data_limit))
    return verified_traces(ds, where=f"distill.data_from {src}")


def teacher_data(cfg: Any, teacher: str, out: Path) -> tuple[Any, dict[str, Any]]:
    """The distillation set in ``out/rows`` (a ``datasets`` folder), reused when present: the teacher's samples
    (``distill.samples`` per prompt on ``distill.prompts`` training prompts at ``distill.temperature``, stage 3's
    filters: correct, readable format, one language, no repetition, not cut) plus non-reasoning rows at
    ``distill.general_share``; or :func:`load_traces` when ``distill.data_from`` is set."""
    from datasets import Dataset, load_from_disk

    from r1lib.evaluation import eval_sampler, train_problems
    from r1lib.prompts import PromptFormat
    from r1lib.stage_data import mix_rows, row_table, sample_and_filter
    from r1lib.tasks.general import sft_rows
    from transformers import AutoTokenizer

    d, summary_path = cfg.distill, out / "data.json"
    if (out / "rows" / "dataset_info.json").exists() and summary_path.exists():
        return load_from_disk(str(out / "rows")), json.loads(summary_path.read_text())
    t0 = time.perf_counter()
    if d.data_from:
        reasoning, stats = load_traces(cfg)
        source = {"data_from": d.data_from, "split": d.data_split}
    else:
        fmt = PromptFormat("chat", AutoTokenizer.from_pretrained(teacher))
        prompts = train_problems(cfg, d.prompts, seed=cfg.seed * 1000 + 5)   # not the prompts of stages 1 and 3
        sampler = eval_sampler(cfg, teacher, add_special_tokens=fmt.add_special_tokens)
        reasoning, fstats = sample_and_filter(sampler, prompts, n=d.samples, temperature=d.temperature,
                                              max_new_tokens=cfg.rl.max_new_tokens, prompt_format=fmt,
                                              seed=cfg.seed + 5, readable_format=True,
                                              max_per_prompt=d.kept_per_prompt)
        stats = fstats.to_dict()
        source = {"teacher": teacher}
    note = None
    if not reasoning and d.data_from:
        raise ValueError(f"distill.data_from {d.data_from}: no verified trace among its rows ({stats})")
    if not reasoning:   # a teacher that solves nothing (a toy-size smoke run): say so, keep the notebook going
        from r1lib.stage_data import demonstrations

        reasoning = demonstrations(prompts[: max(1, d.prompts // 4)], seed=cfg.seed)
        note = "no sample of the teacher survived the filters: the reasoning rows are templated demonstrations"
    n_general = round(len(reasoning) * d.general_share / (1 - d.general_share))
    general = sft_rows(n_general, split="train", seed=cfg.seed + 5) if n_general else []
    rows = mix_rows(reasoning, general, seed=cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    ds = Dataset.from_list(rows)
    ds.save_to_disk(str(out / "rows"))
    summary = {**source, "filter": stats, "rows": row_table(rows), "n_rows": len(rows), "note": note,
               "seconds": time.perf_counter() - t0}
    atomic_write_json(summary_path, summary)
    return ds, summary


# --------------------------------------------------------------------------------------------
# Training: SFT of a student, RL on a student
# --------------------------------------------------------------------------------------------


def distill_student(cfg: Any, base: str, data: Any, out: Path, *, seed: int, progress: bool = False) -> Any:
    """SFT of one student base on the traces (TRL ``SFTTrainer``, loss on the reply, lr cosine to a tenth)."""
    from r1lib.training.sft import run_sft

    d = cfg.distill
    return run_sft(base, data, out, epochs=d.epochs, lr=d.lr, batch_size=d.batch_size, max_length=d.max_length,
                   seed=seed, wandb_mode=cfg.tracking.wandb_mode, device=cfg.model.device, progress=progress)


def rl_compute(run_dir: str | Path, batch_size: int) -> dict[str, float]:
    """What an RL run of ``batch_size`` completions per step cost, from its log: ``seconds`` (training wall time,
    rollouts included, held-out checks not), ``train_tokens`` (sampled completion tokens: each gets one gradient
    pass), ``steps``."""
    from r1lib.tracking import read_metrics

    df = read_metrics(run_dir)
    steps = df.dropna(subset=["length/mean"]).sort_values("step")
    return {"seconds": float(steps["train_seconds"].iloc[-1]) if len(steps) else 0.0,
            "train_tokens": float((steps["length/mean"] * batch_size).sum()), "steps": int(len(steps))}


def _rl_runs(cfg: Any, student: Student, out: Path, progress: bool) -> dict[int, dict[str, Any]]:
    """R1-Zero-style GRPO on ``student``'s base for every seed (notebook 01's template and rewards, ``rl``
    settings, ``distill.rl_steps`` steps); per seed: the policy folder and its compute."""
    from r1lib.ablation import run_arms

    d = cfg.distill
    missing = [s for s in d.seeds if not (out / f"rl_seed{s}" / "policy" / "config.json").exists()]
    if missing:   # a finished run is only read (run_arms would save its policy again)
        run_arms(cfg, {"rl": {"rl.steps": d.rl_steps, "rl.eval_every": d.rl_steps, "rl.checkpoint_every": d.rl_steps,
                              "rl.eval_limit": cfg.pipeline.rl_eval_problems, "rl.eval_k": cfg.pipeline.rl_eval_k}},
                 missing, init_model=student.path, runs_dir=out, progress=progress)
    return {s: {"policy": str(out / f"rl_seed{s}" / "policy"), **rl_compute(out / f"rl_seed{s}", cfg.rl.batch_size)}
            for s in d.seeds}


# --------------------------------------------------------------------------------------------
# The whole notebook
# --------------------------------------------------------------------------------------------


def run_distillation(cfg: Any, out_dir: str | Path, *, students: list[Student] | None = None,
                     progress: bool = False, say: Any = print) -> DistillationResult:
    """Teacher data -> every student distilled -> RL on the first student -> every row evaluated (held-out test
    split, ``distill.eval_k`` samples, T/top-p of ``eval``). Rows: ``teacher``, ``<student>/base``,
    ``<student>/distilled`` (seed ``distill.seeds[0]``), and for the first student ``.../distilled_seed<s>``,
    ``.../rl_seed<s>`` for every seed and, when ``distill.rl_after_distill_steps``, ``.../distilled+rl``."""
    from r1lib.pipeline import chat_rl_config, reasoning_row
    from r1lib.training.rl import train_rl

    d, out = cfg.distill, Path(out_dir)
    teacher = teacher_path(cfg)
    if not d.data_from and not (Path(teacher) / "config.json").exists() and not cfg.distill.teacher:
        raise FileNotFoundError(f"distillation: the teacher (the R1 analogue) is missing at {teacher}; run notebook "
                                "04 first, or set distill.teacher / distill.data_from")
    students = students if students is not None else student_bases(cfg, progress=progress)
    data, data_summary = teacher_data(cfg, teacher, out / "data")
    say(f"distillation data: {data_summary['n_rows']} rows {data_summary['rows']} ({data_summary['seconds']:.0f} s)")
    res = DistillationResult(teacher={"path": teacher}, data=data_summary, students=students)
    k = d.eval_k
    if not d.data_from:
        res.rows["teacher"] = reasoning_row(cfg, teacher, row_format("teacher"), k=k)
        res.models["teacher"] = teacher
        res.teacher["params"] = _params_of(teacher)
    first = students[0]
    for i, st in enumerate(students):
        lab = student_label(st.name)
        res.rows[f"{lab}/base"] = reasoning_row(cfg, st.path, row_format(f"{lab}/base"), k=k)
        res.models[f"{lab}/base"] = st.path
        for seed in (d.seeds if i == 0 else d.seeds[:1]):
            t0 = time.perf_counter()
            sft = distill_student(cfg, st.path, data, out / "students" / lab / f"sft_seed{seed}", seed=seed,
                                  progress=progress)
            name = f"{lab}/distilled" if seed == d.seeds[0] else f"{lab}/distilled_seed{seed}"
            res.sft[name] = {"seconds": sft.seconds, "train_tokens": sft.train_tokens, "steps": sft.steps,
                             "seed": seed, "skipped": sft.skipped}
            res.rows[name] = reasoning_row(cfg, sft.model_dir, row_format(name), k=k)
            res.models[name] = str(sft.model_dir)
            say(f"{name}: pass@1 {res.rows[name]['pass_at_1']:.3f} ({sft.steps} SFT steps, {sft.seconds:.0f} s; "
                f"{time.perf_counter() - t0:.0f} s with the evaluation)")
    lab = student_label(first.name)
    for seed, run in _rl_runs(cfg, first, out / "students" / lab / "rl", progress).items():
        name = f"{lab}/rl_seed{seed}"
        res.rl[name] = {k_: v for k_, v in run.items() if k_ != "policy"} | {"seed": seed}
        res.rows[name] = reasoning_row(cfg, run["policy"], row_format(name), k=k)
        res.models[name] = run["policy"]
        say(f"{name}: pass@1 {res.rows[name]['pass_at_1']:.3f} ({run['steps']} GRPO steps, {run['seconds']:.0f} s)")
    if d.rl_after_distill_steps:
        part = chat_rl_config(cfg, d.rl_after_distill_steps, {"accuracy": 1.0, "readable_format": 1.0},
                              cfg.rl.temperature)   # as the pipeline's stage 2, from the distilled student
        run_dir = out / "students" / lab / "distilled_rl"
        if not (run_dir / "policy" / "config.json").exists():
            train_rl(part, init_model=res.models[f"{lab}/distilled"], out_dir=run_dir, progress=progress)
        name = f"{lab}/distilled+rl"
        res.rl[name] = rl_compute(run_dir, cfg.rl.batch_size)
        res.rows[name] = reasoning_row(cfg, run_dir / "policy", row_format(name), k=k)
        res.models[name] = str(run_dir / "policy")
    return res


def row_format(name: str) -> str:
    """The prompt format a row of the tables is evaluated in: the bases and the RL-from-base runs answer under the
    R1-Zero template they were trained with, the teacher and the distilled students in the chat format."""
    return "r1_zero" if name.endswith("/base") or "/rl_seed" in name else "chat"


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def verdict(distill_mean: float, distill_std: float, rl_mean: float, rl_std: float) -> str:
    """Which side of v1 Table 6 wins, and whether the gap is beyond the sum of the two seed spreads
    (:func:`r1lib.ablation.separated`, notebook 02's criterion; with one seed nothing separates).

    >>> verdict(.74, .01, .001, .001), verdict(.5, .1, .45, .1), verdict(.3, .01, .6, .05)
    ('distillation wins, beyond the seed spread', 'distillation ahead, within the seed spread', 'RL wins, beyond the seed spread')
    """
    from r1lib.ablation import separated

    beyond = separated({"mean": distill_mean, "std": distill_std}, {"mean": rl_mean, "std": rl_std})
    if distill_mean > rl_mean:
        return "distillation wins, beyond the seed spread" if beyond else "distillation ahead, within the seed spread"
    return "RL wins, beyond the seed spread" if beyond else "RL ahead, within the seed spread"


def distillation_metrics(cfg: Any, res: DistillationResult) -> dict[str, Any]:
    """``results/distillation/metrics.json``: ``teacher`` (its row and the data), ``students`` (per student:
    ``params``, ``distilled_pass_at_1``, ``distilled_cons_at_k``, ``base_pass_at_1`` and the rest of its rows),
    ``distill_vs_rl`` (the first student, every seed: means, stds, per seed, seconds and training tokens), the
    ``rows`` of both tables and the settings."""
    from r1lib.paths import portable_path

    d = cfg.distill
    first = student_label(res.students[0].name)
    data = {k: (portable_path(v, cfg.root) if k in ("teacher", "data_from") else v) for k, v in res.data.items()}
    teacher = {**res.teacher, "path": portable_path(res.teacher["path"], cfg.root), **res.rows.get("teacher", {}),
               "data": data}
    students = {}
    for st in res.students:
        lab = student_label(st.name)
        dist, base = res.rows[f"{lab}/distilled"], res.rows[f"{lab}/base"]
        students[lab] = {"params": st.params, "source": st.source, "path": portable_path(st.path, cfg.root),
                         "pretrain_seconds": st.pretrain_seconds,
                         "distilled_pass_at_1": dist["pass_at_1"], "distilled_cons_at_k": dist["cons_at_k"],
                         "base_pass_at_1": base["pass_at_1"], "base_cons_at_k": base["cons_at_k"],
                         "distilled": dist, "base": base, "sft": res.sft[f"{lab}/distilled"]}
    dist_names = [f"{first}/distilled" if s == d.seeds[0] else f"{first}/distilled_seed{s}" for s in d.seeds]
    rl_names = [f"{first}/rl_seed{s}" for s in d.seeds]
    dm, ds = _mean_std([res.rows[n]["pass_at_1"] for n in dist_names])
    rm, rs = _mean_std([res.rows[n]["pass_at_1"] for n in rl_names])
    vs = {"student": first, "seeds": list(d.seeds), "k": d.eval_k,
          "rl_pass_at_1_mean": rm, "rl_pass_at_1_std": rs, "distill_pass_at_1_mean": dm, "distill_pass_at_1_std": ds,
          "rl_per_seed": {s: res.rows[n]["pass_at_1"] for s, n in zip(d.seeds, rl_names)},
          "distill_per_seed": {s: res.rows[n]["pass_at_1"] for s, n in zip(d.seeds, dist_names)},
          "rl_seconds": statistics.fmean(res.rl[n]["seconds"] for n in rl_names),
          "distill_seconds": statistics.fmean(res.sft[n]["seconds"] for n in dist_names),
          "rl_train_tokens": statistics.fmean(res.rl[n]["train_tokens"] for n in rl_names),
          "distill_train_tokens": statistics.fmean(res.sft[n]["train_tokens"] for n in dist_names),
          "rl_steps": d.rl_steps, "distill_steps": res.sft[dist_names[0]]["steps"],
          "teacher_data_seconds": res.data.get("seconds"), "distill_wins": dm > rm,
          "verdict": verdict(dm, ds, rm, rs)}
    if f"{first}/distilled+rl" in res.rows:
        vs["distilled_plus_rl_pass_at_1"] = res.rows[f"{first}/distilled+rl"]["pass_at_1"]
        vs["distilled_plus_rl"] = res.rl[f"{first}/distilled+rl"]
    return {"teacher": teacher, "students": students, "distill_vs_rl": vs, "rows": res.rows,
            "settings": d.model_dump(mode="json")}


_COLS = {"pass_at_1": "pass@1", "cons_at_k": "cons@k", "mean_length": "length (tokens)",
         "reflection_rate": "reflection", "format_rate": "format"}


def _row_md(label: str, row: dict[str, float], extra: Sequence[str] = ()) -> str:
    cells = [f"{row[c]:.1f}" if c == "mean_length" else f"{100 * row[c]:.1f}" for c in _COLS]
    return f"| {label} | " + " | ".join([*extra, *cells]) + " |"


def table5_markdown(metrics: dict[str, Any]) -> str:
    """The v1 Table 5 analogue: the teacher and each distilled student (pass@1, cons@k, length, reflection, format),
    with each student's base under the R1-Zero template for reference.

    >>> row = {"pass_at_1": .9, "cons_at_k": .95, "mean_length": 120.0, "reflection_rate": .1, "format_rate": 1.0}
    >>> m = {"teacher": {**row, "params": 10}, "students": {"nano": {"params": 5, "distilled": row, "base": row}}}
    >>> print(table5_markdown(m).splitlines()[2])
    | teacher (R1 analogue) | 10 | 90.0 | 95.0 | 120.0 | 10.0 | 100.0 |
    """
    lines = ["| model | params | " + " | ".join(_COLS.values()) + " |", "|---|---:|" + "---:|" * len(_COLS)]
    t = metrics["teacher"]
    if "pass_at_1" in t:
        lines.append(_row_md("teacher (R1 analogue)", t, [f"{t['params']:,}" if "params" in t else ""]))
    for lab, s in metrics["students"].items():
        lines.append(_row_md(f"{lab}: distilled", s["distilled"], [f"{s['params']:,}"]))
        lines.append(_row_md(f"{lab}: base (R1-Zero template)", s["base"], [f"{s['params']:,}"]))
    return "\n".join(lines)


def table6_markdown(metrics: dict[str, Any]) -> str:
    """The v1 Table 6 analogue on the first student: RL from its base vs distillation, mean ± std over seeds, with
    each side's training seconds and training tokens.

    >>> m = {"distill_vs_rl": {"student": "nano", "seeds": [0, 1], "rl_pass_at_1_mean": .5, "rl_pass_at_1_std": .1,
    ...      "distill_pass_at_1_mean": .8, "distill_pass_at_1_std": .02, "rl_seconds": 60.0, "distill_seconds": 20.0,
    ...      "rl_train_tokens": 5e5, "distill_train_tokens": 3e5, "rl_steps": 60, "distill_steps": 190}}
    >>> print(table6_markdown(m).splitlines()[2])
    | nano: GRPO from the base (R1-Zero recipe) | 50.0 ± 10.0 | 60 | 60 | 500,000 |
    """
    v = metrics["distill_vs_rl"]
    lines = [f"| {v['student']}, {len(v['seeds'])} seeds | pass@1 (%) | steps | train seconds | train tokens |",
             "|---|---:|---:|---:|---:|",
             f"| {v['student']}: GRPO from the base (R1-Zero recipe) | {100 * v['rl_pass_at_1_mean']:.1f} ± "
             f"{100 * v['rl_pass_at_1_std']:.1f} | {v['rl_steps']} | {v['rl_seconds']:.0f} | {v['rl_train_tokens']:,.0f} |",
             f"| {v['student']}: distilled from the R1 analogue (SFT) | {100 * v['distill_pass_at_1_mean']:.1f} ± "
             f"{100 * v['distill_pass_at_1_std']:.1f} | {v['distill_steps']} | {v['distill_seconds']:.0f} | "
             f"{v['distill_train_tokens']:,.0f} |"]
    if "distilled_plus_rl_pass_at_1" in v:
        r = v["distilled_plus_rl"]
        lines.append(f"| {v['student']}: distilled + GRPO (1 seed) | {100 * v['distilled_plus_rl_pass_at_1']:.1f} | "
                     f"+{r['steps']} | +{r['seconds']:.0f} | +{r['train_tokens']:,.0f} |")
    return "\n".join(lines)
