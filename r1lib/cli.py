"""Command line: ``python -m r1lib {run,validate} experiments/<name>.yaml [--set key=value ...]``.

Exit codes: 0 success; 1 a notebook failed (``run``); 2 invalid config or usage (message on stderr,
no traceback).
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
               "  python -m r1lib run experiments/smoke.yaml --set rl.steps=10 --only 00_base_model\n",
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

    validate = sub.add_parser("validate", help="load and validate a config, print the resolved config",
                              description="Load and validate a config (with overrides) and print it as YAML.")
    add_common(validate)
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, parse_overrides(args.overrides))
    sys.stdout.write(yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from r1lib.runner import run_experiment  # papermill is imported only when running

    summary = run_experiment(args.config, parse_overrides(args.overrides), only=args.only or None,
                             kernel_name=args.kernel)
    return EXIT_OK if summary.ok else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return _cmd_run(args) if args.command == "run" else _cmd_validate(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
