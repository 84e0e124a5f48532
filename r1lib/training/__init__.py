"""Training loops: the RL engine (``r1lib.training.rl``: GRPO, Dr. GRPO, RLOO, PPO on one loop)."""

from r1lib.training.rl import DataStream, RLResult, RLTrainer, TrainingError, sequence_logprobs, train_rl

__all__ = ["DataStream", "RLResult", "RLTrainer", "TrainingError", "sequence_logprobs", "train_rl"]
