"""RL algorithms as small pure functions on tensors: advantages, losses, schedules.

Nothing here touches models, optimizers or processes; the training loop (``r1lib.training.rl``)
calls these. Every function is unit-tested on hand-computed examples (tests/test_algorithms.py).
"""

from r1lib.algorithms.advantages import (compute_advantages, dr_grpo_advantages, grpo_advantages,
                                         rloo_advantages)
from r1lib.algorithms.losses import (aggregate, clipped_surrogate, entropy_from_logits, kl_k3, policy_loss,
                                     token_logprobs)
from r1lib.algorithms.schedules import length_schedule, paper_length_schedule, scaled_step, step_value

__all__ = ["compute_advantages", "dr_grpo_advantages", "grpo_advantages", "rloo_advantages", "aggregate",
           "clipped_surrogate", "entropy_from_logits", "kl_k3", "policy_loss", "token_logprobs",
           "length_schedule", "paper_length_schedule", "scaled_step", "step_value"]
