"""vLLM rollouts (``rl.sampler: vllm``, r1lib.sampling_vllm) without a GPU.

vLLM cannot run here, so TRL's ``VLLMGeneration`` is replaced by a stand-in with the same interface
(token ids in, token ids + log-probs out, ``sync_weights``). The stand-in keeps its *own copy* of the
policy, loaded only by ``sync_weights``, and samples from it with r1lib's KV sampler: if the engine
forgot to push weights, the rollouts would come from stale weights and the checks below would fail.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from conftest import write_tiny_config
from r1lib.config import VLLMConfig, load_config
from r1lib.models import load_model
from r1lib.sampling import SamplingParams, make_sampler
from r1lib.sampling_vllm import VLLMRolloutSampler, VLLMUnavailableError, require_vllm
from r1lib.training.rl import RLTrainer, TrainingError


class ScriptedGeneration:
    """VLLMGeneration's interface, answering from a script: row i gets ``script[i % len(script)]``."""

    def __init__(self, script: list[list[int]], **kwargs):
        self.kwargs = kwargs
        self.script = script
        self.calls: list[dict] = []
        self.syncs = 0

    def sync_weights(self):
        self.syncs += 1

    def generate(self, prompts, images, num_generations):
        self.calls.append({"prompts": prompts, "n": num_generations, "temperature": self.temperature,
                           "top_p": self.top_p, "max": self.max_completion_length,
                           "kwargs": dict(self.generation_kwargs)})
        ids = [self.script[i % len(self.script)] for i in range(len(prompts))]
        logprobs = [[[-0.5 - j] for j in range(len(row))] for row in ids]
        if getattr(self, "none_logprob", False):
            logprobs[0][0] = [None]
        return prompts, ids, logprobs, None


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return load_model(tiny_model_dir)[1]


def test_completions_follow_r1libs_rules(tok):
    body = tok.encode(" <think> 2 + 2 = 4 </think> <answer> 4 </answer> more", add_special_tokens=False)
    plain = tok.encode(" <think> 2 + 2", add_special_tokens=False)
    script = [body, plain + [tok.eos_token_id], plain]
    made = {}

    def factory(**kw):
        made["gen"] = ScriptedGeneration(script, **kw)
        return made["gen"]

    settings = VLLMConfig(mode="server", server_port=8123, gpu_memory_utilization=0.5)
    s = VLLMRolloutSampler(torch.nn.Linear(1, 1), object(), tok, settings, factory=factory)
    gen = made["gen"]
    assert gen.kwargs["mode"] == "server" and gen.kwargs["server_port"] == 8123
    assert gen.kwargs["gpu_memory_utilization"] == 0.5 and gen.kwargs["enable_sleep_mode"] is True
    assert gen.kwargs["logprobs"] == 0

    out = s.generate(["Compute 2 + 2.", "Compute 1 + 1."],
                     SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=20, n=3, stop=("</answer>",), seed=5))
    assert gen.syncs == 0  # only the engine pushes weights, on every process together
    call = gen.calls[0]
    # TRL's layout: each prompt's token ids n times in a row, one request each
    first = tok("Compute 2 + 2.", add_special_tokens=False)["input_ids"]
    assert call["prompts"][:3] == [first] * 3 and call["prompts"][3] != first and call["n"] == 3
    assert (call["temperature"], call["top_p"], call["max"]) == (0.7, 0.9, 20)
    assert call["kwargs"] == {"stop": ["</answer>"], "include_stop_str_in_output": True}  # no shared seed
    assert [len(row) for row in out] == [3, 3]
    stop, eos, length = out[0]
    assert stop.finish_reason == "stop" and stop.text.endswith("</answer>") and "more" not in stop.text
    assert stop.token_ids == body
    assert eos.finish_reason == "eos" and eos.token_ids[-1] == tok.eos_token_id
    assert tok.eos_token not in eos.text
    assert length.finish_reason == "length" and length.text == tok.decode(plain)
    assert stop.logprobs == [-0.5 - j for j in range(len(body))]
    s.push_weights()
    assert gen.syncs == 1 and s.pushes == 1
    gen.none_logprob = True  # a NaN log-prob, which TRL reports as None: no log-probs for that completion
    out = s.generate(["x"], SamplingParams(n=2))
    assert out[0][0].logprobs is None and out[0][1].logprobs is not None


class PolicyCopyGeneration:
    """A stand-in vLLM engine: its own copy of the model, updated only by ``sync_weights``; samples with the
    KV sampler from that copy, as a colocated vLLM would from its weights."""

    instances: list["PolicyCopyGeneration"] = []

    def __init__(self, *, model, processing_class, **kwargs):
        self.model = model
        self.copy = copy.deepcopy(model).eval()
        self.tok = processing_class
        self.kwargs = kwargs
        self.pushed: list[float] = []
        self.calls = 0
        PolicyCopyGeneration.instances.append(self)

    def sync_weights(self):
        with torch.no_grad():
            for dst, src in zip(self.copy.parameters(), self.model.parameters()):
                dst.copy_(src)
        self.pushed.append(float(sum(p.detach().double().sum() for p in self.copy.parameters())))

    def generate(self, prompts, images, num_generations):
        self.calls += 1
        sampler = make_sampler(self.copy, self.tok, backend="kv")
        texts = [self.tok.decode(p) for p in prompts]
        params = SamplingParams(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_completion_length,
                                n=1, stop=tuple(self.generation_kwargs["stop"]), seed=1234 + self.calls)
        outs = [row[0] for row in sampler.generate(texts, params)]
        return prompts, [c.token_ids for c in outs], [[[lp] for lp in c.logprobs] for c in outs], None


def _checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def test_engine_pushes_each_steps_weights_to_vllm(tmp_path, tiny_model_dir, monkeypatch):
    cfg = load_config(write_tiny_config(
        tmp_path, "vllm",
        "rl: {steps: 3, batch_size: 8, num_generations: 4, mini_batches: 2, max_new_tokens: 8, sampler: vllm, "
        "lr: 0.001, beta: 0.01, checkpoint_every: 100, eval_every: 100, eval_k: 2, eval_limit: 2, "
        "rewards: {accuracy: 1.0, format: 1.0, overlong_penalty: {weight: 1.0, max_len: 6, buffer: 6}}, "
        "vllm: {gpu_memory_utilization: 0.4}}",
        "eval: {max_new_tokens: 8}"))
    monkeypatch.setattr("r1lib.sampling_vllm.require_vllm", lambda field="rl.sampler": None)
    PolicyCopyGeneration.instances.clear()
    trainer = RLTrainer(cfg, init_model=tiny_model_dir, out_dir=tmp_path / "run",
                        vllm_factory=lambda **kw: PolicyCopyGeneration(**kw))
    before = _checksum(trainer.policy)
    res = trainer.train()
    (gen,) = PolicyCopyGeneration.instances
    assert gen.kwargs["gpu_memory_utilization"] == 0.4 and gen.kwargs["mode"] == "colocate"
    # one push at the start, one after each step's optimizer steps; the last is the trained policy
    assert len(gen.pushed) == 1 + cfg.rl.steps
    assert gen.pushed[0] == pytest.approx(before, abs=0) and gen.pushed[-1] != gen.pushed[0]
    for a, b in zip(gen.copy.parameters(), trainer.policy.parameters()):
        assert torch.equal(a, b)
    assert res.steps == 3 and (res.policy_path / "config.json").exists()
    assert gen.calls >= cfg.rl.steps  # the rollouts (and evaluations) came from the vLLM stand-in

    # A non-main process of a multi-process run: it evaluates too when vLLM is a server (TRL gathers every
    # process's prompts there), keeps nothing and writes nothing; with colocated vLLM it does not evaluate.
    import types

    trainer.acc = types.SimpleNamespace(is_main_process=False, wait_for_everyone=lambda: None)
    trainer.world = 2
    for mode, evaluates in (("server", True), ("colocate", False)):
        trainer.rl = cfg.rl.model_copy(update={"vllm": cfg.rl.vllm.model_copy(update={"mode": mode})})
        calls, pushes = gen.calls, len(gen.pushed)
        assert trainer._eval_and_log(None, 99) == {}
        assert (gen.calls > calls) is evaluates
        # after a main-only evaluation every process pushes (sleep mode would otherwise re-push on one process only)
        assert len(gen.pushed) == pushes + (0 if evaluates else 1)
        assert not (tmp_path / "run" / "eval_samples" / "step_00000099.jsonl").exists()


def test_vllm_without_a_gpu_fails_before_any_work(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VLLMUnavailableError, match="needs a CUDA GPU"):
        require_vllm()
    cfg = load_config(write_tiny_config(tmp_path, "vllm", "rl: {sampler: vllm}"))
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"rl.sampler='vllm' needs a CUDA GPU.*rl.sampler: kv"):
        RLTrainer(cfg, init_model=tmp_path / "no_such_model", out_dir=out)  # the GPU check comes first
    assert not out.exists()


def test_vllm_settings_are_validated(tmp_path):
    with pytest.raises(Exception, match=r"rl\.vllm\.mode"):
        load_config(write_tiny_config(tmp_path, "vllm", "rl: {sampler: vllm, vllm: {mode: remote}}"))
    with pytest.raises(Exception, match=r"gpu_memory_utilization"):
        load_config(write_tiny_config(tmp_path, "vllm", "rl: {vllm: {gpu_memory_utilization: 1.5}}"))
