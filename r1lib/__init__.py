"""r1lib: a notebook-driven reproduction of DeepSeek-R1 (arXiv 2501.12948), CPU-sized by default.

The package layout follows the pipeline:

- ``r1lib.tasks``       verifiable problems: procedural generators and benchmark loaders
- ``r1lib.prompts``     the R1-Zero template
- ``r1lib.rewards``     rule-based rewards (accuracy, format, language consistency, length)
- ``r1lib.grading``     answer extraction and equivalence (math-verify with hard time limits)
- ``r1lib.text_stats``  reflection words and language mixing
- ``r1lib.models``      tokenizer and model presets (the tiny "V3-Base" analogue), loading
- ``r1lib.sampling``    batched sampling behind a back-end interface (HF generate on CPU)
- ``r1lib.evaluation``  pass@1 over k samples, pass@k, cons@k, paper-style tables
- ``r1lib.tracking``    local JSONL metrics log + W&B (offline by default)
- ``r1lib.config``      the one typed, validated configuration system (YAML in experiments/)
- ``r1lib.runner``      runs an experiment's notebooks with papermill
"""

__version__ = "0.1.0"
