"""Tests for r1lib.config: malformed configs give clear messages; good configs, overrides, round trip."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import yaml

from r1lib.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_to_dict,
    find_project_root,
    load_config,
    parse_overrides,
    save_config,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
BAD = DATA / "bad_configs"
NOTEBOOK = DATA / "notebooks" / "write_params.ipynb"

# file -> substrings its error message must contain (besides the file name).
BAD_CASES: dict[str, list[str]] = {
    "unknown_key.yaml": ["unknown field 'sed'", "did you mean 'seed'"],
    "nested_unknown_key.yaml": ["unknown field 'rl.bach_size'", "did you mean 'rl.batch_size'"],
    "wrong_type.yaml": ["field 'pretrain.steps'", "valid integer", "(got 'many')"],
    "negative_batch_size.yaml": ["field 'rl.batch_size': Input should be greater than 0 (got -4)"],
    "num_generations_not_dividing.yaml": ["rl.num_generations (8) must divide rl.batch_size (60)"],
    "mini_batches_not_dividing.yaml": ["rl.mini_batches (3) must divide rl.batch_size (64)"],
    "yaml_syntax_error.yaml": ["line 4", "YAML syntax error"],
    "not_a_mapping.yaml": ["top level must be a mapping", "got a list"],
    "bad_enum.yaml": ["field 'rl.algorithm'", "'grpo', 'ppo', 'dr_grpo' or 'rloo'", "(got 'sac')"],
    "top_p_too_big.yaml": ["field 'eval.top_p'", "less than or equal to 1", "(got 1.5)"],
    "difficulty_out_of_range.yaml": ["field 'tasks.difficulty'", "within 1..5", "[0, 6]"],
    "missing_notebook.yaml": ["field 'notebooks[0].path'", "notebooks/99_does_not_exist.ipynb", "not found"],
    "unknown_task.yaml": ["field 'tasks.mix'", "unknown task 'sudoku'"],
    "zero_task_weight.yaml": ["field 'tasks.mix'", "task 'word' must be > 0"],
    "missing_tasks.yaml": ["field 'tasks'", "Field required"],
    "bad_name.yaml": ["field 'name'", "letters, digits"],
    "empty.yaml": ["empty"],
    "duplicate_key.yaml": ["line 6", "duplicate key 'seed'"],
    "bad_notebook_override.yaml": ["notebooks[0].overrides", "field 'rl.batch_size'", "greater than 0 (got 0)"],
    "vocab_too_small.yaml": ["field 'pretrain.vocab_size'", "greater than or equal to 260 (got 100)"],
    "bad_results_template.yaml": ["field 'results_dir'", "'{name}'", "results/{experiment}"],
    "model_without_source.yaml": ["field 'model'", "preset or model.path"],
    "bad_preset.yaml": ["field 'model.preset'", "(got 'huge')"],
}


def test_every_bad_config_file_has_a_case() -> None:
    on_disk = {p.name for p in BAD.glob("*.yaml")}
    assert on_disk == set(BAD_CASES)
    assert len(on_disk) >= 12


@pytest.mark.parametrize("file_name", sorted(BAD_CASES))
def test_bad_config_message_names_file_and_field(file_name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(BAD / file_name)
    message = str(info.value)
    assert file_name in message
    for expected in BAD_CASES[file_name]:
        assert expected in message, f"{expected!r} not in {message!r}"
    assert "Traceback" not in message
    # No chained exception would be shown: the message alone explains the problem.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"^config file not found: .*nope\.yaml$"):
        load_config(missing)


# ---------------------------------------------------------------------------------------------
# good configs
# ---------------------------------------------------------------------------------------------

MINIMAL = {
    "name": "mini",
    "notebooks": [str(NOTEBOOK)],
    "tasks": {"mix": {"arithmetic": 2.0, "word": 1.0}, "n_train": 100, "n_test": 10},
}


def write_config(folder: Path, data: dict, name: str = "exp.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").touch()  # makes `folder` the project root for relative paths
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_minimal_config_defaults(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, MINIMAL))
    assert cfg.name == "mini" and cfg.seed == 0
    assert cfg.results_dir == "results/mini" and cfg.runs_dir == "runs/mini"
    assert cfg.root == tmp_path.resolve()
    assert cfg.results_path == tmp_path.resolve() / "results" / "mini"
    assert cfg.config_path == (tmp_path / "exp.yaml").resolve()
    assert cfg.notebooks[0].path == str(NOTEBOOK) and cfg.notebooks[0].overrides == {}
    assert cfg.notebook_path(cfg.notebooks[0]) == NOTEBOOK
    assert cfg.tasks.difficulty == (1, 3)
    assert cfg.model.preset == "tiny" and cfg.model.path is None and cfg.model.dtype == "float32"
    assert cfg.pretrain.steps == 600 and cfg.pretrain.vocab_size == 1024 and cfg.pretrain.lr == 3e-3
    assert cfg.sampling.stop == ["</answer>"] and cfg.sampling.top_p == 1.0
    # Paper evaluation protocol (docs/paper.md §5).
    assert (cfg.eval.temperature, cfg.eval.top_p, cfg.eval.k) == (0.6, 0.95, 16)
    assert cfg.eval.limit is None and cfg.eval.benchmarks == ["synthetic"]
    # Paper beta (docs/paper.md §2.2); tiny-scale G and batch.
    assert cfg.rl.beta == 0.001 and cfg.rl.num_generations == 8 and cfg.rl.batch_size == 64
    assert cfg.rl.rewards == {"accuracy": 1.0, "format": 1.0} and cfg.rl.loss_aggregation == "sequence"
    assert cfg.tracking.wandb_mode == "offline" and cfg.tracking.project == "r1lib"


def test_relative_notebook_paths_root_then_config_dir(tmp_path: Path) -> None:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "a.ipynb").write_text("{}")
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "local.ipynb").write_text("{}")
    data = {**MINIMAL, "notebooks": ["notebooks/a.ipynb", {"path": "local.ipynb", "overrides": {"seed": 3}}]}
    (tmp_path / "pyproject.toml").touch()
    config_file = tmp_path / "experiments" / "exp.yaml"
    config_file.write_text(yaml.safe_dump(data))
    cfg = load_config(config_file)
    assert cfg.root == tmp_path.resolve()
    assert [cfg.notebook_path(e) for e in cfg.notebooks] == [
        (tmp_path / "notebooks" / "a.ipynb").resolve(), (tmp_path / "experiments" / "local.ipynb").resolve()]
    assert cfg.notebooks[1].overrides == {"seed": 3}


def test_find_project_root(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / ".git").mkdir()
    assert find_project_root(tmp_path / "a" / "b") == (tmp_path / "a").resolve()
    assert find_project_root(REPO / "tests" / "data") == REPO


def test_direct_construction_forbids_extra_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        ExperimentConfig(**MINIMAL, bogus=1)
    cfg = ExperimentConfig(**MINIMAL)  # absolute notebook path: found without a config file
    assert cfg.config_path is None and cfg.results_dir == "results/mini"


# ---------------------------------------------------------------------------------------------
# overrides
# ---------------------------------------------------------------------------------------------


def test_parse_overrides_yaml_values() -> None:
    parsed = parse_overrides(["rl.batch_size=8", "rl.lr=1.0e-4", "model.path=null", "eval.benchmarks=[a, b]",
                              "name=x=y", "seed= 7 ", "eval.limit="])
    assert parsed == {"rl.batch_size": 8, "rl.lr": 1e-4, "model.path": None, "eval.benchmarks": ["a", "b"],
                      "name": "x=y", "seed": 7, "eval.limit": None}
    assert parse_overrides({"rl.batch_size": 8}) == {"rl.batch_size": 8}
    assert parse_overrides(None) == {}


@pytest.mark.parametrize("bad, expected", [
    (["rl.batch_size"], "must look like key=value"),
    (["=3"], "empty key"),
    (["rl.steps=[1, 2"], "not valid YAML"),
    ("rl.steps=3", "list of 'key=value' strings"),
])
def test_parse_overrides_errors(bad: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_overrides(bad)  # type: ignore[arg-type]


def test_apply_overrides_sets_merges_and_copies() -> None:
    raw = {"name": "a", "rl": {"batch_size": 64}, "tasks": {"mix": {"word": 1.0}}}
    out = apply_overrides(raw, {"rl.num_generations": 4, "tasks.mix.linear": 2.0, "pretrain": {"steps": 5},
                                "rl": {"lr": 0.5}})
    assert out == {"name": "a", "rl": {"batch_size": 64, "num_generations": 4, "lr": 0.5},
                   "tasks": {"mix": {"word": 1.0, "linear": 2.0}}, "pretrain": {"steps": 5}}
    assert raw == {"name": "a", "rl": {"batch_size": 64}, "tasks": {"mix": {"word": 1.0}}}  # not mutated
    # A dotted key naming a dict-valued field replaces the whole dict.
    assert apply_overrides(raw, {"tasks.mix": {"countdown": 1}})["tasks"]["mix"] == {"countdown": 1}


@pytest.mark.parametrize("override, expected", [
    ({"rl.bach_size": 8}, "unknown field 'rl.bach_size' (did you mean 'rl.batch_size'?)"),
    ({"rll.steps": 8}, "unknown field 'rll' (did you mean 'rl'?)"),
    ({"rl.batch_size.x": 8}, "cannot set 'rl.batch_size.x': 'rl.batch_size' is not a section"),
    ({"rl": {"stepz": 1}}, "unknown field 'rl.stepz'"),
    ({"rl..steps": 1}, "not a valid dotted key"),
])
def test_apply_overrides_unknown_keys(override: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, override)
    assert expected in str(info.value)


def test_load_config_with_overrides(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    cfg = load_config(path, ["rl.batch_size=16", "rl.num_generations=4", "name=other", "tasks.difficulty=[2, 5]"])
    assert (cfg.rl.batch_size, cfg.rl.num_generations, cfg.name) == (16, 4, "other")
    assert cfg.results_dir == "results/other"  # the template is filled after the overrides
    assert cfg.tasks.difficulty == (2, 5)
    cfg = load_config(path, {"eval": {"k": 4, "limit": 8}})
    assert (cfg.eval.k, cfg.eval.limit, cfg.eval.top_p) == (4, 8, 0.95)


def test_load_config_override_errors_name_file_and_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path, {"rl.batch_size": -4})
    assert str(info.value).endswith("exp.yaml: field 'rl.batch_size': Input should be greater than 0 (got -4)")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["rl.bach_size=3"])
    assert "exp.yaml" in str(info.value) and "unknown field 'rl.bach_size'" in str(info.value)
    with pytest.raises(ConfigError, match=r"rl.num_generations \(3\) must divide rl.batch_size \(64\)"):
        load_config(path, ["rl.num_generations=3"])


def test_notebook_entry_overrides_are_validated(tmp_path: Path) -> None:
    data = {**MINIMAL, "notebooks": [{"path": str(NOTEBOOK), "overrides": {"rl.bach_size": 3}}]}
    with pytest.raises(ConfigError) as info:
        load_config(write_config(tmp_path, data))
    assert "exp.yaml: notebooks[0].overrides (write_params.ipynb)" in str(info.value)
    assert "unknown field 'rl.bach_size'" in str(info.value)


# ---------------------------------------------------------------------------------------------
# round trip
# ---------------------------------------------------------------------------------------------


def test_save_and_reload_round_trip(tmp_path: Path) -> None:
    data = {**MINIMAL, "notebooks": [{"path": str(NOTEBOOK), "overrides": {"rl.steps": 3}}],
            "model": {"preset": None, "path": "some/checkpoint"}, "eval": {"limit": 5, "checkpoints": ["c1"]}}
    cfg = load_config(write_config(tmp_path, data), ["seed=11"])
    out = save_config(cfg, tmp_path / "results" / "mini" / "config.yaml")
    assert out.read_text().startswith("# Resolved experiment config written by r1lib from exp.yaml\n")
    assert [p.name for p in out.parent.iterdir()] == ["config.yaml"]  # no temp file left behind
    again = load_config(out)
    assert config_to_dict(again) == config_to_dict(cfg)
    d = config_to_dict(again)
    assert d["seed"] == 11 and d["tasks"]["difficulty"] == [1, 3] and d["model"]["path"] == "some/checkpoint"
    assert d["notebooks"] == [{"path": str(NOTEBOOK), "overrides": {"rl.steps": 3}}]


# ---------------------------------------------------------------------------------------------
# the shipped experiment files
# ---------------------------------------------------------------------------------------------

EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


def _notebooks_present(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    entries = [e if isinstance(e, str) else e["path"] for e in data.get("notebooks", [])]
    return all((REPO / e).is_file() for e in entries)


def test_experiment_files_exist() -> None:
    assert {p.name for p in EXPERIMENTS} >= {"default.yaml", "smoke.yaml"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_experiment_file_loads(path: Path) -> None:
    if not _notebooks_present(path):
        pytest.skip(f"notebooks of {path.name} not written yet")
    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.results_dir == f"results/{path.stem}"


def test_smoke_is_smaller_than_default() -> None:
    """smoke.yaml extends default.yaml: the same notebooks and settings, only the sizes are smaller."""
    smoke, default = load_config(REPO / "experiments" / "smoke.yaml"), load_config(REPO / "experiments" / "default.yaml")
    assert [Path(n.path).name for n in smoke.notebooks] == [Path(n.path).name for n in default.notebooks]
    assert smoke.pretrain.steps == 20 and smoke.pretrain.corpus_size == 500
    assert smoke.eval.k == 4 and smoke.eval.limit == 8
    assert smoke.tasks.n_test == 16 and smoke.sampling.max_new_tokens == 48
    assert smoke.tasks.mix == default.tasks.mix and smoke.pretrain.corpus == default.pretrain.corpus
    assert smoke.rl.steps < default.rl.steps and smoke.rl.lr == default.rl.lr


def test_extends_merges_sections_and_replaces_values(tmp_path: Path) -> None:
    (tmp_path / "nb.ipynb").write_text("{}")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "name": "base", "notebooks": ["nb.ipynb"],
        "tasks": {"mix": {"addition": 1.0, "subtraction": 1.0}, "n_train": 10, "n_test": 5},
        "rl": {"steps": 60, "lr": 5.0e-5}}))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump({
        "extends": "base.yaml", "name": "child", "tasks": {"mix": {"addition": 1.0}}, "rl": {"steps": 30}}))
    cfg = load_config(tmp_path / "child.yaml", {"rl.batch_size": 32})
    assert cfg.name == "child"
    assert cfg.tasks.mix == {"addition": 1.0}              # a free mapping is replaced, not merged
    assert (cfg.tasks.n_train, cfg.tasks.n_test) == (10, 5)  # the rest of the section comes from the base
    assert (cfg.rl.steps, cfg.rl.lr, cfg.rl.batch_size) == (30, 5.0e-5, 32)


@pytest.mark.parametrize("extends, message", [
    ("missing.yaml", "field 'extends': file not found: missing.yaml"),
    ("self.yaml", "extends itself"),
    (3, "must name another experiment YAML file"),
])
def test_extends_errors_name_the_file(tmp_path: Path, extends: object, message: str) -> None:
    (tmp_path / "self.yaml").write_text(yaml.safe_dump({"extends": extends, "name": "x"}))
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "self.yaml")


def test_a_relative_config_path_is_found_from_a_subfolder(monkeypatch):
    """A notebook opened in Jupyter Lab runs in notebooks/: its default "experiments/default.yaml" is looked up
    from the project root, and every path of the config still refers to the root."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root / "notebooks")
    cfg = load_config("experiments/default.yaml")
    assert cfg.root == root and cfg.runs_path == root / "runs" / "default"
    assert cfg.base_model == str(root / "runs" / "default" / "base_model")
    with pytest.raises(ConfigError, match="config file not found: experiments/nope.yaml"):
        load_config("experiments/nope.yaml")


def test_a_notebook_on_its_own_gets_its_entrys_overrides():
    """Notebook 02 run on its own (Jupyter Lab, default parameters) gets the settings default.yaml gives it in the
    main job; under the runner (whose overrides hold the entry's, then --set) the result is the same."""
    root = Path(__file__).resolve().parents[1]
    path = root / "experiments" / "default.yaml"
    alone = load_config(path, {}, notebook="02_ablation_grpo_vs_ppo")
    assert (alone.rl.steps, alone.rl.batch_size, alone.rl.lr) == (30, 32, 1e-4)
    plain = load_config(path)
    assert (plain.rl.steps, plain.rl.batch_size) == (60, 64)            # the experiment's own rl section
    from r1lib.runner import notebook_parameters

    entry = next(e for e in plain.notebooks if "02_" in e.path)
    params = notebook_parameters(plain, entry, {"rl.steps": 12})
    runner = load_config(params["config_path"], params["overrides"], notebook="02_ablation_grpo_vs_ppo")
    assert (runner.rl.steps, runner.rl.batch_size) == (12, 32)        # --set wins over the entry
    assert load_config(path, {}, notebook="01_r1_zero_grpo.ipynb").rl.steps == 60   # no entry overrides
