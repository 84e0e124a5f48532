"""Command line: ``python -m r1lib {run,validate,train-rl} experiments/<name>.yaml [--set key=value ...]``.

``train-rl`` runs the RL engine (:mod:`r1lib.training.rl`) in this process; it is what
``accelerate launch ... -m r1lib train-rl ...`` runs in every process (:mod:`r1lib.launch`).

``run --executor slurm`` submits each notebook as a Slurm job and ``status`` reports on them (:mod:`r1lib.slurm`).

``report EXPERIMENT [--out PATH] [--wandb]`` writes a self-contained HTML report of an experiment's committed
results, and optionally a W&B Report (:mod:`r1lib.report`, docs/tracking.md).

Exit codes: 0 success; 1 a notebook failed (``run``), an sbatch failed (``run --executor slurm``), a Slurm job
failed or was cancelled (``status``) or training stopped (``train-rl``: NaN loss, empty
batch, unreadable checkpoint); 2 invalid config or usage, e.g. a missing model folder (message on
stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

from r1lib import __version__
from r1lib.config import ConfigError, config_to_dict, load_config, parse_overrides

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for ``python -m r1lib``."""
    parser = argparse.ArgumentParser(
        prog="python -m r1lib",
        description="r1lib: run DeepSeek-R1 reproduction experiments (YAML configs in experiments/).",
        epilog="Examples:\n"
               "  python -m r1lib validate experiments/smoke.yaml\n"
               "  python -m r1lib run experiments/smoke.yaml --set rl.steps=10 --only 00_base_model\n"
               "  accelerate launch --config_file experiments/accelerate/cpu_single.yaml -m r1lib train-rl \\\n"
               "      experiments/smoke.yaml --init runs/default/base_model --out runs/smoke/rl\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"r1lib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="experiment YAML file, e.g. experiments/default.yaml")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field by dotted key, value parsed as YAML "
                            "(e.g. --set rl.batch_size=8); repeatable")

    run = sub.add_parser("run", help="execute the experiment's notebooks in order with papermill",
                         description="Execute the experiment's notebooks in order; executed copies, "
                                     "run_summary.json and the resolved config go to results_dir. "
                                     "Exit 0 iff all notebooks succeeded.")
    add_common(run)
    run.add_argument("--only", action="append", default=[], metavar="NAME",
                     help="run only this notebook (file name or stem); repeatable")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    run.add_argument("--parallel", type=int, default=None, metavar="N",
                     help="run up to N notebooks at once where their `needs` allow it (sets runner.parallel; "
                          "local executor)")
    run.add_argument("--merge-summary", action="store_true",
                     help="keep the other notebooks' entries of an existing run_summary.json (each Slurm job runs "
                          "one notebook with it)")
    run.add_argument("--executor", choices=("local", "slurm"), default="local",
                     help="local: run here (default); slurm: submit one sbatch job per notebook, each after the "
                          "previous succeeded (r1lib.slurm; record in <results_dir>/slurm_jobs.json)")
    run.add_argument("--slurm-template", default=None, metavar="FILE",
                     help="job script template (default: experiments/slurm/notebook.sbatch; see its README)")
    run.add_argument("--partition", default=None, help="Slurm partition of every job (over the config's slurm)")
    run.add_argument("--gpus", type=int, default=None, metavar="N",
                     help="GPUs per node of every job (over the config's slurm.gpus_per_node)")
    run.add_argument("--dry-run", action="store_true",
                     help="with --executor slurm: write the job scripts and print the sbatch commands only")

    status = sub.add_parser("status", help="state of the Slurm jobs of `run --executor slurm`",
                            description="Read <results_dir>/slurm_jobs.json and print each notebook's job id, state, "
                                        "elapsed time and log (squeue, sacct, or scontrol without accounting). "
                                        "Exit 1 if a job failed or was cancelled, else 0.")
    add_common(status)

    validate = sub.add_parser("validate", help="load and validate a config, print the resolved config",
                              description="Load and validate a config (with overrides) and print it as YAML.")
    add_common(validate)

    train = sub.add_parser("train-rl", help="run the RL engine (GRPO/PPO/...) on the config's rl section",
                           description="Train a policy with r1lib.training.rl (one process, or every process "
                                       "of `accelerate launch ... -m r1lib train-rl ...`). Resumes from the newest "
                                       "checkpoint in OUT_DIR/checkpoints unless --no-resume. Outputs: "
                                       "OUT_DIR/metrics.jsonl, checkpoints/, eval_samples/, policy/, launch.json.")
    add_common(train)
    train.add_argument("--init", required=True, metavar="MODEL_PATH",
                       help="initial policy: a Hugging Face model folder (e.g. runs/default/base_model) or hub id")
    train.add_argument("--out", required=True, metavar="OUT_DIR", help="output folder of the run")
    train.add_argument("--no-resume", dest="resume", action="store_false",
                       help="start from step 0 even if OUT_DIR has checkpoints (they are overwritten as it goes)")
    train.add_argument("--quiet", action="store_true", help="no per-step progress lines")

    distill = sub.add_parser(
        "distill", help="SFT of one distillation student on the config's distillation data (TRL SFTTrainer)",
        description="Distil into one student of distill.students (notebook 05's SFT step; one process, or every "
                    "process of `accelerate launch --config_file experiments/accelerate/deepspeed_zero3.yaml -m "
                    "r1lib distill ...`). The data: distill.data_from's verified traces, or the teacher's filtered "
                    "samples (prepared once by the main process into <runs_dir>/distillation/data). Resumes a "
                    "killed run; a finished one is skipped. Default OUT: the folder notebook 05 reads, "
                    "<runs_dir>/distillation/students/<student>/sft_seed<seed>.")
    add_common(distill)
    distill.add_argument("--student", required=True, help="one entry of distill.students")
    distill.add_argument("--seed", type=int, default=None, help="SFT seed (default: the first of distill.seeds)")
    distill.add_argument("--out", default=None, metavar="OUT_DIR", help="output folder (default: see above)")
    distill.add_argument("--quiet", action="store_true", help="no progress bar")

    report = sub.add_parser(
        "report", help="write a self-contained HTML report of an experiment (and optionally a W&B Report)",
        description="Build <results_dir>/report.html from the experiment's committed result files (run summary, "
                    "per-stage metrics, tables, figures embedded as PNG, the resolved config, the paper's numbers "
                    "beside ours). A stage without results is marked 'not run'. --wandb also publishes a W&B Report "
                    "(needs WANDB_API_KEY and WANDB_MODE not offline/disabled; otherwise it says why it skipped). "
                    "See docs/tracking.md.")
    report.add_argument("experiment", help="experiment name (experiments/<name>.yaml) or a YAML path")
    report.add_argument("--out", default=None, metavar="PATH", help="HTML file (default: <results_dir>/report.html)")
    report.add_argument("--wandb", action="store_true", help="also build and save a W&B Report (wandb-workspaces)")
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, parse_overrides(args.overrides))
    sys.stdout.write(yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    if args.executor == "slurm":
        from r1lib.slurm import SlurmError, submit_experiment

        if args.parallel is not None:
            print("error: --parallel: only with --executor local (Slurm runs each notebook as its own job)",
                  file=sys.stderr)
            return EXIT_USAGE

        try:
            submit_experiment(args.config, parse_overrides(args.overrides), only=args.only or None,
                              template=args.slurm_template, partition=args.partition, gpus=args.gpus,
                              kernel_name=args.kernel, dry_run=args.dry_run)
        except SlurmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    slurm_only = [opt for opt, value in (("--slurm-template", args.slurm_template), ("--partition", args.partition),
                                         ("--gpus", args.gpus), ("--dry-run", args.dry_run or None)) if value is not None]
    if slurm_only:
        print(f"error: {', '.join(slurm_only)}: only with --executor slurm", file=sys.stderr)
        return EXIT_USAGE
    from r1lib.runner import run_experiment  # papermill is imported only when running

    overrides = parse_overrides(args.overrides)
    if args.parallel is not None:
        overrides["runner.parallel"] = args.parallel
    summary = run_experiment(args.config, overrides, only=args.only or None,
                             kernel_name=args.kernel, merge_summary=args.merge_summary)
    return EXIT_OK if summary.ok else EXIT_FAILED


def _cmd_status(args: argparse.Namespace) -> int:
    from r1lib.slurm import experiment_status, format_status

    report = experiment_status(args.config, parse_overrides(args.overrides))
    _say(format_status(report))
    return EXIT_FAILED if report.failed else EXIT_OK


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _cmd_train_rl(args: argparse.Namespace) -> int:
    import json
    import re
    from pathlib import Path

    cfg = load_config(args.config, parse_overrides(args.overrides))
    init = Path(args.init)
    if not init.exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", args.init) is None:
        print(f"error: --init: model folder not found: {args.init}", file=sys.stderr)
        return EXIT_USAGE
    if init.exists() and not (init / "config.json").is_file():
        print(f"error: --init: {args.init} is not a Hugging Face model folder (no config.json)", file=sys.stderr)
        return EXIT_USAGE

    from r1lib.launch import LAUNCH_INFO_FILE, launch_info, make_accelerator, weights_checksum
    from r1lib.training.rl import RLTrainer, TrainingError

    try:
        acc = make_accelerator()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    info = launch_info(acc)
    tag = f"[train-rl process {acc.process_index}/{acc.num_processes}]"
    # One write per line (print's text and newline are two writes when unbuffered; the processes share a pipe).
    _say(f"{tag} distributed_type={info['distributed_type']} backend={info['backend']} device={info['device']} "
         f"deepspeed_zero_stage={info['deepspeed_zero_stage']}")
    out = Path(args.out)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / LAUNCH_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    try:
        # r1lib.training.rl.train_rl with the trainer kept, for the resume notice and the checksum below.
        trainer = RLTrainer(cfg, init_model=args.init, out_dir=out, accelerator=acc, progress=not args.quiet)
        last = trainer.latest_checkpoint() if args.resume else None
        if last is not None and acc.is_main_process:
            _say(f"{tag} resuming from {last}")
        result = trainer.train(resume=args.resume)
        # Before end_training: under ZeRO-3 the checksum gathers the shards, a collective on the process group.
        checksum = weights_checksum(trainer.policy)
    except TrainingError as exc:
        print(f"error: {tag} training stopped: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except FileNotFoundError as exc:  # the model folder vanished or a hub id is not available offline
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        acc.end_training()  # destroys the process group (local; no collective)
    # The checksum of this process's copy of the policy: equal on every process of a data-parallel run
    # (DDP, ZeRO-1/2) iff the gradients were synchronised; under ZeRO-3 that of the gathered shards
    # (tests/test_rl_distributed.py).
    _say(f"{tag} finished: {result.steps} steps in {result.train_seconds:.1f} s; policy {result.policy_path}; "
         f"weights_checksum={checksum}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from r1lib.report import write_report

    try:
        write_report(args.experiment, args.out, wandb=args.wandb, say=_say)
    except ValueError as exc:  # a malformed results file: the message names it
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _cmd_distill(args: argparse.Namespace) -> int:
    import os
    import time
    from pathlib import Path

    from r1lib.distillation import student_base_path, student_label, teacher_data, teacher_path

    cfg = load_config(args.config, parse_overrides(args.overrides))
    d = cfg.distill
    if args.student not in d.students:
        print(f"error: --student {args.student!r} is not in distill.students {d.students}", file=sys.stderr)
        return EXIT_USAGE
    base, source = student_base_path(cfg, args.student)
    if source != "checkpoint" and not (Path(base) / "config.json").exists():
        print(f"error: --student {args.student}: its base model is missing at {base}; pretrain it first "
              f"(notebook 00 with the same config)", file=sys.stderr)
        return EXIT_USAGE
    seed = d.seeds[0] if args.seed is None else args.seed
    out = Path(args.out) if args.out else (cfg.runs_path / "distillation" / "students" / student_label(args.student)
                                           / f"sft_seed{seed}")
    data_dir = cfg.runs_path / "distillation" / "data"
    rank = int(os.environ.get("RANK", "0"))
    try:
        if rank == 0:     # one process samples or filters the data; the others wait for its folder
            data, summary = teacher_data(cfg, teacher_path(cfg), data_dir)
            _say(f"[distill] data: {summary['n_rows']} rows {summary['rows']} in {data_dir}")
        else:
            deadline = time.monotonic() + 3600
            while not (data_dir / "data.json").exists():
                if time.monotonic() > deadline:
                    print(f"error: [distill rank {rank}] no data in {data_dir} after an hour", file=sys.stderr)
                    return EXIT_FAILED
                time.sleep(2)
            data, _ = teacher_data(cfg, teacher_path(cfg), data_dir)
        from r1lib.training.sft import run_sft

        res = run_sft(base, data, out, epochs=d.epochs, lr=d.lr, batch_size=d.batch_size, max_length=d.max_length,
                      seed=seed, wandb_mode=cfg.tracking.wandb_mode, device=cfg.model.device,
                      progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _say(f"[distill rank {rank}] {'already finished' if res.skipped else 'finished'}: {res.steps} steps, "
         f"{res.train_tokens:,} training tokens, {res.seconds:.1f} s; model {res.model_dir}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        commands = {"run": _cmd_run, "validate": _cmd_validate, "train-rl": _cmd_train_rl, "distill": _cmd_distill,
                    "status": _cmd_status, "report": _cmd_report}
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
