"""Rewards for the memory-control environment: a registry of terms and their weighted composition.

The reward is the extension point most often changed, so it is a recipe entry, not code in the
environment: a list of weighted terms, each a built-in (by ``name``) or the user's own function
(by dotted path, ``_target_``)::

    reward:
      terms:
        - {name: iou, weight: 1.0}
        - {name: memory_churn, weight: 0.01}
        - {_target_: mypkg.rewards.area_consistency, weight: 0.5, kwargs: {tolerance: 0.3}}

``CompositeReward(terms)(td)`` returns ``(total [B], {label: term value [B]})``; the environment
reports each term's value as ``info/reward_terms/<label>`` and training logs its mean.

The contract: the TensorDict a reward receives
----------------------------------------------
After each action the environment (which steps B episodes at once) predicts the next frame and
calls the reward with a ``tensordict.TensorDict`` of batch size ``[B]``, at model input
resolution ``S``, holding:

=================  ===============  ===========================================================
key                dtype, shape     meaning
=================  ===============  ===========================================================
``pred_mask``      bool [B, S, S]   predicted mask of the object on the new frame
``pred_logits``    float [B, S, S]  its logits
``gt_mask``        bool [B, S, S]   ground-truth mask, same resolution
``object_score``   float [B]        predicted presence logit (> 0: object present)
``predicted_iou``  float [B]        the model's own IoU estimate for ``pred_mask``
``action``         int64 [B]        the action just taken: 0 discard, 1..R write recent slot
                                    k, R+1 add anchor
``fifo_action``    int64 [B]        the action SAM 2's FIFO rule would have taken
``overwrote``      bool [B]         whether the action replaced a valid memory (an eviction)
``frame``          int64 [B]        index of the new frame in its video
``num_frames``     int64 [B]        length of the video
``reference_iou``  float [B]        *optional*: IoU that SAM 2's FIFO rule got on the same
                                    frame of the same track; present when a configured term
                                    needs it (``"reference_iou" in reward.needs``) or the
                                    environment tracks the reference for logging
                                    (``SAM2MemoryEnv(track_reference=True)``, as the recipes do); the
                                    environment computes and caches the reference runs
=================  ===============  ===========================================================

A reward function is ``fn(td, **kwargs) -> Tensor`` of shape ``[B]`` (one value per episode;
bool or integer outputs are cast to float32). It must not modify ``td``. Optional keys it
reads are declared with ``@register_reward(name, needs=("reference_iou",))``; reading an
undeclared optional key fails when the key is absent, with an error naming the term.

Built-in terms: ``iou``, ``j_and_f`` (kwarg ``bound_th``), ``delta_vs_reference`` (needs
``reference_iou``), ``presence`` (1 right, kwarg ``wrong`` = 0 wrong) and ``memory_churn`` (-1
per eviction). Errors (unknown names, unimportable paths, unknown or missing kwargs, wrong
output shape, NaN/inf, missing keys) are :class:`RewardError` and name the term.
"""

from sam2rl.rewards import builtin  # noqa: F401  (registers the built-in terms)
from sam2rl.rewards.composite import CompositeReward, RewardTerm, TermSpec, reward_needs
from sam2rl.rewards.registry import OPTIONAL_KEYS, REWARDS, RewardError, RewardFn, import_reward, register_reward

__all__ = [
    "OPTIONAL_KEYS",
    "REWARDS",
    "CompositeReward",
    "RewardError",
    "RewardFn",
    "RewardTerm",
    "TermSpec",
    "import_reward",
    "register_reward",
    "reward_needs",
]
