"""Tests for r1lib.report: the HTML report on the committed results, "not run" sections, the paper's numbers, and the
W&B Report builder against a stand-in for wandb_workspaces (tests have no network)."""

from __future__ import annotations

import base64
import json
import re
import sys
import types
from pathlib import Path

import pytest

from r1lib.cli import main
from r1lib.config import ConfigError, load_config
from r1lib.report import (
    PAPER,
    Para,
    Table,
    build_sections,
    build_wandb_report,
    find_experiment_config,
    wandb_report_skip_reason,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "experiments" / "default.yaml"
ABSOLUTE = re.compile(r"""(?:^|["'\s=(:>])/(?:work|tmp|home|root|Users|mnt|opt|var/folders)/""")


def _section(html: str, key: str) -> str:
    start = html.index(f'<section id="{key}">')
    return html[start:html.index("</section>", start)]


def _cells(html: str) -> list[str]:
    return re.findall(r"<td>(.*?)</td>", html)


@pytest.fixture(scope="module")
def default_report(tmp_path_factory) -> str:
    r1_zero = REPO / "results" / "r1_zero" / "metrics.json"
    if not r1_zero.is_file() or not (REPO / "results" / "default" / "run_summary.json").is_file():
        pytest.skip("the default experiment's committed results are not in this checkout")
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = write_report(DEFAULT, out, say=lambda line: None)
    assert result["html"] == out
    assert result["not_run"] in ([], ["completions"])  # held-out completions need the (uncommitted) runs/ folder
    return out.read_text(encoding="utf-8")


def test_html_report_on_committed_results(default_report: str) -> None:
    html = default_report
    for key in ("summary", "base_model", "r1_zero", "ablation_grpo_vs_ppo", "ablation_length", "r1_pipeline",
                "distillation", "evaluation", "completions", "config"):
        assert f'<section id="{key}">' in html
    # Figures are embedded PNGs (self-contained): decode one and check the PNG signature.
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 8
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    # R1-Zero: our numbers from the results file, beside the paper's with its section.
    m = json.loads((REPO / "results" / "r1_zero" / "metrics.json").read_text())
    r1 = _section(html, "r1_zero")
    row = f"<td>{100 * m['base_pass_at_1']:.1f} → {100 * m['final_pass_at_1']:.1f}</td><td>15.6 → 71.0</td>"
    assert row in r1
    assert "<td>86.7</td><td>docs/paper.md §6.1 (V1 Table 2)</td>" in r1
    assert f"<td>{100 * m['final_cons_at_k']:.1f}</td>" in r1
    # Run summary: one row per notebook with its measured seconds.
    summary = json.loads((REPO / "results" / "default" / "run_summary.json").read_text())
    cells = _cells(_section(html, "summary"))
    for nb in summary["notebooks"]:
        i = cells.index(nb["name"])
        assert cells[i + 1] == nb["status"] and cells[i + 2] == f"{nb['seconds']:,.0f}"
    # GRPO vs PPO: the mean ± std per arm and the paper's ordering.
    ppo = json.loads((REPO / "results" / "ablation_grpo_vs_ppo" / "metrics.json").read_text())
    grpo = ppo["methods"]["GRPO"]["final_pass_at_1"]
    assert f"<td>{100 * grpo['mean']:.1f} ± {100 * grpo['std']:.1f}</td>" in _section(html, "ablation_grpo_vs_ppo")
    assert "clearly worse than GRPO" in html
    # Pipeline: the v2 Table 3 column; distillation: the committed Markdown tables and the paper's Table 5/6 numbers.
    assert "<td>59.0 / 71.7</td>" in _section(html, "r1_pipeline")
    dist = _section(html, "distillation")
    assert "<td>28.9 / 52.7</td>" in dist and "<th>nano, 2 seeds</th>" in dist
    assert "tracking:" in _section(html, "config")  # the resolved config
    assert not ABSOLUTE.search(html), "a machine path in a report meant to be shared"


def _tiny_cfg(tmp_path: Path):
    from conftest import write_tiny_config

    return write_tiny_config(tmp_path, "rep")


def test_missing_results_say_not_run(tmp_path: Path) -> None:
    cfg_path = _tiny_cfg(tmp_path)
    cfg = load_config(cfg_path)
    stage = cfg.stage_path("r1_zero")
    stage.mkdir(parents=True)
    (stage / "metrics.json").write_text(json.dumps({
        "base_pass_at_1": 0.125, "final_pass_at_1": 0.4321, "final_cons_at_k": 0.5, "k": 4, "steps": 10,
        "eval_steps": [0, 5, 10], "eval_pass_at_1": [0.125, 0.3, 0.4321], "eval_cons_at_4": [0.2, 0.4, 0.5]}))
    sections = {s.key: s for s in build_sections(cfg)}
    assert sections["r1_zero"].ran and sections["config"].ran
    assert [k for k, s in sections.items() if not s.ran] == [
        "summary", "base_model", "ablation_grpo_vs_ppo", "ablation_length", "r1_pipeline", "distillation",
        "evaluation", "completions"]
    out = tmp_path / "r.html"
    result = write_report(cfg_path, out, say=lambda line: None)
    html = out.read_text(encoding="utf-8")
    assert result["not_run"] == [k for k, s in sections.items() if not s.ran]
    assert '<p class="missing">not run: ' in _section(html, "base_model")
    assert "base_model/metrics.json not found" in _section(html, "base_model")
    r1 = _section(html, "r1_zero")
    assert "<td>12.5 → 43.2</td>" in r1 and "<td>10</td><td>43.2</td><td>50.0</td>" in r1
    assert r1.count("data:image/png;base64,") == 1  # the pass@1 curve against the paper's, drawn here
    assert "(not run)" in html.split("</nav>")[0]  # the table of contents marks them
    # A malformed results file is an error that names it.
    (stage / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"r1_zero/metrics.json: not valid JSON"):
        build_sections(cfg)


def test_paper_numbers_are_in_docs_paper() -> None:
    """Every number the report quotes from the paper is in docs/paper.md, under the section it cites."""
    paper = (REPO / "docs" / "paper.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", paper, flags=re.M)
    for key, numbers in PAPER.items():
        for p in numbers:
            section = re.search(r"§(\d+(?:\.\d+)?)", p.source)
            assert section and section.group(1) in headings, (key, p.source)
            for number in re.findall(r"\d[\d,]*\.\d+|\d{2,}[\d,]*", p.value + " " + p.what * (key == "r1_zero_curve")):
                assert number in paper, f"{key}: {number} ({p.value}) is not in docs/paper.md"


def _stub_workspaces(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in for wandb_workspaces.reports.v2: every block records its arguments; Report.save records itself."""
    v2 = types.ModuleType("wandb_workspaces.reports.v2")

    class Block:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.args, self.kwargs = args, kwargs

    for name in ("H1", "H2", "P", "MarkdownBlock", "CodeBlock", "PanelGrid", "Runset", "LinePlot", "RunComparer",
                 "WeavePanelSummaryTable"):
        setattr(v2, name, type(name, (Block,), {}))

    class Report(Block):
        saved: list = []
        url = "https://wandb.ai/stub/r1lib/reports/stub"

        def save(self, draft: bool = False) -> "Report":
            Report.saved.append(self)
            return self

    v2.Report = Report
    reports = types.ModuleType("wandb_workspaces.reports")
    reports.v2 = v2
    pkg = types.ModuleType("wandb_workspaces")
    pkg.reports = reports
    for name, mod in (("wandb_workspaces", pkg), ("wandb_workspaces.reports", reports),
                      ("wandb_workspaces.reports.v2", v2)):
        monkeypatch.setitem(sys.modules, name, mod)
    return v2


def test_wandb_report_builder_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v2 = _stub_workspaces(monkeypatch)
    cfg = load_config(_tiny_cfg(tmp_path))
    stage = cfg.stage_path("r1_zero")
    stage.mkdir(parents=True)
    (stage / "metrics.json").write_text(json.dumps({"base_pass_at_1": 0.1, "final_pass_at_1": 0.9, "k": 4}))
    sections = build_sections(cfg)
    report = build_wandb_report(cfg, sections, entity="team")
    assert isinstance(report, v2.Report)
    assert report.kwargs["project"] == "r1lib" and report.kwargs["entity"] == "team"
    assert report.kwargs["title"] == "r1lib: rep"
    blocks = report.kwargs["blocks"]
    kinds = [type(b).__name__ for b in blocks]
    assert kinds[:3] == ["H1", "P", "PanelGrid"]
    assert blocks[2].kwargs["runsets"][0].kwargs["filters"] == "Metric('Group') == 'rep'"
    assert kinds.count("H2") == len(sections)
    # The R1-Zero section: its table as Markdown (ours beside the paper's) and a panel grid of its stage's runs.
    i = next(j for j, b in enumerate(blocks) if kinds[j] == "H2" and b.args[0].startswith("R1-Zero"))
    j = next(j for j in range(i + 1, len(blocks)) if kinds[j] in ("H2", "PanelGrid"))
    assert kinds[j] == "PanelGrid"
    markdown = "\n".join(b.kwargs["text"] for b in blocks[i:j] if kinds[blocks.index(b)] == "MarkdownBlock")
    assert "| pass@1, step 0 → ? | 10.0 → 90.0 | 15.6 → 71.0 | docs/paper.md §7 (V1 pp.3, 6) |" in markdown
    grid = blocks[j].kwargs
    assert grid["runsets"][0].kwargs["filters"] == "Metric('Group') == 'rep' and Metric('JobType') == 'r1_zero'"
    panels = grid["panels"]
    assert [p.kwargs["y"] for p in panels if type(p).__name__ == "LinePlot"][0] == ["eval/pass@1"]
    assert panels[-1].kwargs["table_name"] == "eval/completions"
    # Sections that did not run get no panels: exactly one stage grid (R1-Zero) besides the overview.
    assert kinds.count("PanelGrid") == 2
    assert kinds[-1] == "CodeBlock" and "tracking:" in blocks[-1].kwargs["code"]


def test_write_report_wandb_skips_or_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_path = _tiny_cfg(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    said: list[str] = []
    result = write_report(cfg_path, tmp_path / "a.html", wandb=True, say=said.append)
    assert "WANDB_MODE=offline" in result["wandb_skipped"] and result["wandb_url"] is None
    assert said[-1].startswith("W&B Report skipped: WANDB_MODE=offline")
    monkeypatch.setenv("WANDB_MODE", "online")
    assert "no W&B API key" in wandb_report_skip_reason()
    (tmp_path / ".netrc").write_text("machine api.wandb.ai login user password abc123\n")
    (tmp_path / ".netrc").chmod(0o600)
    v2 = _stub_workspaces(monkeypatch)
    assert wandb_report_skip_reason() is None
    result = write_report(cfg_path, tmp_path / "b.html", wandb=True, say=said.append)
    assert result["wandb_url"] == v2.Report.url and len(v2.Report.saved) == 1
    assert said[-1] == f"W&B Report: {v2.Report.url}"


def test_table_markdown_escapes_pipes() -> None:
    t = Table(["a", "b|c"], [["1", "x|y"]], caption="from f")
    assert t.markdown() == "| a | b\\|c |\n|---|---|\n| 1 | x\\|y |\n\n*from f*"
    assert Para("x").text == "x"


def test_cli_report_and_experiment_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_path = _tiny_cfg(tmp_path)
    out = tmp_path / "cli.html"
    assert main(["report", str(cfg_path), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert f"report: {out}" in capsys.readouterr().out
    assert find_experiment_config("default", REPO) == REPO / "experiments" / "default.yaml"
    with pytest.raises(ConfigError, match=r"no experiment named 'nope'.*experiments: .*default"):
        find_experiment_config("nope", REPO)
    assert main(["report", str(tmp_path / "missing.yaml")]) == 2
    assert "experiment config not found" in capsys.readouterr().err
