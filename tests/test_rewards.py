"""sam2rl.rewards: built-in terms on hand-made 8x8 masks, composition, user terms, every error path."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict

from sam2rl.rewards import (
    REWARDS,
    CompositeReward,
    RewardError,
    RewardTerm,
    register_reward,
    reward_needs,
)
from sam2rl.schema.agent import RewardConfig

TESTS = Path(__file__).resolve().parent
README = TESTS.parent / "README.md"
BROKEN = "example_rewards.broken"
AREA = "example_rewards.my_rewards.area_consistency"


@pytest.fixture(autouse=True)
def _isolated_registry_and_modules(monkeypatch: pytest.MonkeyPatch):
    """Each test sees the built-in registry only, and re-imports the example packages."""
    saved = dict(REWARDS)
    monkeypatch.syspath_prepend(str(TESTS))
    yield
    REWARDS.clear()
    REWARDS.update(saved)
    for name in [m for m in sys.modules if m.split(".")[0] in ("example_rewards", "mypkg")]:
        del sys.modules[name]


def box(rows: slice, cols: slice) -> torch.Tensor:
    m = torch.zeros(8, 8, dtype=torch.bool)
    m[rows, cols] = True
    return m


EMPTY = torch.zeros(8, 8, dtype=torch.bool)
SQUARE = box(slice(2, 6), slice(2, 6))

# Five episodes with known answers:
#   0: pred rows 0-1, gt rows 1-2 (cols 0-3): 8 px each, overlap 4, union 12 -> IoU 1/3
#   1: both empty -> IoU 1 (correct "absent")
#   2: identical squares -> IoU 1, J&F 1
#   3: pred square, gt empty -> IoU 0
#   4: gt 8 px, pred the same plus 2 px (10 px) -> IoU 0.8, area off by 25 %
PRED = [box(slice(0, 2), slice(0, 4)), EMPTY, SQUARE, SQUARE, box(slice(4, 6), slice(0, 5))]
GT = [box(slice(1, 3), slice(0, 4)), EMPTY, SQUARE, EMPTY, box(slice(4, 6), slice(0, 4))]
IOU = [1 / 3, 1.0, 1.0, 0.0, 0.8]
# presence: score>0 vs gt non-empty: right, right (absent), wrong (missed), wrong (hallucinated), right
OBJECT_SCORE = [1.0, -1.0, -2.0, 0.5, 3.0]
PRESENCE = [1.0, 1.0, 0.0, 0.0, 1.0]
OVERWROTE = [True, False, False, True, False]
REFERENCE_IOU = [0.5, 1.0, 0.25, 0.0, 0.8]


def make_td(reference: bool = False) -> TensorDict:
    B = len(PRED)
    pred = torch.stack(PRED)
    data = {
        "pred_mask": pred,
        "pred_logits": torch.where(pred, 4.0, -4.0),
        "gt_mask": torch.stack(GT),
        "object_score": torch.tensor(OBJECT_SCORE),
        "predicted_iou": torch.tensor([0.9, 0.2, 0.5, 0.1, 0.7]),
        "action": torch.tensor([1, 0, 7, 2, 0]),
        "overwrote": torch.tensor(OVERWROTE),
        "frame": torch.full((B,), 3, dtype=torch.int64),
        "num_frames": torch.full((B,), 10, dtype=torch.int64),
    }
    if reference:
        data["reference_iou"] = torch.tensor(REFERENCE_IOU)
    return TensorDict(data, batch_size=[B])


def single(term, td: TensorDict | None = None) -> torch.Tensor:
    total, per_term = CompositeReward([term])(make_td(reference=True) if td is None else td)
    assert len(per_term) == 1
    return total


def close(actual: torch.Tensor, expected: list[float]) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32))


# --------------------------------------------------------------------------- built-in terms


def test_iou_known_values_and_both_empty_is_one() -> None:
    close(single("iou"), IOU)


def test_j_and_f_identical_masks_score_one() -> None:
    jf = single("j_and_f")
    assert jf.dtype == torch.float32 and jf.shape == (5,)
    assert jf[2].item() == pytest.approx(1.0)  # identical
    assert jf[1].item() == pytest.approx(1.0)  # both empty
    assert jf[3].item() == pytest.approx(0.0)  # object hallucinated
    assert 0.0 < jf[0].item() < 1.0


def test_j_and_f_passes_bound_th() -> None:
    # A 1-px shift of a boundary: within a 2-px tolerance F is 1, at the default 0.008*diag
    # (ceil(0.09) = 1 px) it is also matched, but with 0 px tolerance it is not.
    loose = single({"name": "j_and_f", "kwargs": {"bound_th": 2}})
    tight = single({"name": "j_and_f", "kwargs": {"bound_th": 0.0}})
    assert loose[0] > tight[0]


def test_presence_right_is_one_wrong_is_zero_or_the_given_penalty() -> None:
    close(single("presence"), PRESENCE)
    close(single({"name": "presence", "kwargs": {"wrong": -1.0}}), [1.0, 1.0, -1.0, -1.0, 1.0])


def test_memory_churn_is_minus_one_per_eviction() -> None:
    close(single("memory_churn"), [-1.0, 0.0, 0.0, -1.0, 0.0])


def test_delta_vs_reference_subtracts_the_reference_iou() -> None:
    close(single("delta_vs_reference"), [1 / 3 - 0.5, 0.0, 0.75, 0.0, 0.0])


# --------------------------------------------------------------------------- composition


def test_weights_combine_and_per_term_values_are_unweighted() -> None:
    reward = CompositeReward([{"name": "iou", "weight": 2.0}, RewardTerm(name="memory_churn", weight=0.5), "presence"])
    total, per_term = reward(make_td())
    assert list(per_term) == ["iou", "memory_churn", "presence"]
    close(per_term["iou"], IOU)
    close(per_term["memory_churn"], [-1.0, 0.0, 0.0, -1.0, 0.0])
    close(per_term["presence"], PRESENCE)
    expected = [2 * i - 0.5 * o + p for i, o, p in zip(IOU, OVERWROTE, PRESENCE)]
    close(total, expected)
    assert reward.weights == {"iou": 2.0, "memory_churn": 0.5, "presence": 1.0}


def test_repeated_term_gets_a_distinct_label() -> None:
    reward = CompositeReward(["presence", {"name": "presence", "weight": 0.5, "kwargs": {"wrong": -1}}])
    total, per_term = reward(make_td())
    assert list(per_term) == ["presence", "presence#2"]
    close(total, [1.5, 1.5, -0.5, -0.5, 1.5])


def test_needs_reports_reference_iou_only_when_a_term_needs_it() -> None:
    assert reward_needs(["iou", "presence", "memory_churn", "j_and_f"]) == set()
    assert reward_needs(["iou", {"name": "delta_vs_reference", "weight": 0.5}]) == {"reference_iou"}
    assert CompositeReward(["delta_vs_reference"]).needs == {"reference_iou"}
    assert reward_needs({"terms": ["iou"]}) == set()
    # A user function keeps the needs it declared with @register_reward when named by path.
    assert reward_needs([{"_target_": f"{BROKEN}.beats_reference"}]) == {"reference_iou"}


def test_integer_output_is_composed_as_float() -> None:
    total, per_term = CompositeReward([{"_target_": f"{BROKEN}.integer_valued", "weight": 0.5}])(make_td())
    assert total.dtype == torch.float32
    close(total, [1.0, 0.0, 7.0, 2.0, 0.0])


def test_var_kwargs_function_accepts_any_kwargs() -> None:
    total, _ = CompositeReward([{"_target_": f"{BROKEN}.open_kwargs", "kwargs": {"a": 1.0, "b": 2.0}}])(make_td())
    close(total, [3.0] * 5)


def test_registered_user_reward_is_usable_by_name() -> None:
    @register_reward("test_constant")
    def constant(td, value: float = 1.0):
        return torch.full(td.batch_size, value)

    total, per_term = CompositeReward([{"name": "test_constant", "kwargs": {"value": 2.0}}, "iou"])(make_td())
    close(total, [2.0 + v for v in IOU])
    with pytest.raises(RewardError, match="'test_constant' is already registered"):
        register_reward("test_constant")(lambda td: td["frame"].float())
    with pytest.raises(RewardError, match="'test_flow' needs 'optical_flow', which the environment cannot add "
                                          r"\(it adds on request: reference_iou\)"):
        register_reward("test_flow", needs=("optical_flow",))


# --------------------------------------------------------------------------- the user's example


def test_user_reward_by_dotted_path() -> None:
    reward = CompositeReward([{"_target_": AREA, "weight": 0.5, "kwargs": {"tolerance": 0.3}}, {"name": "iou"}])
    total, per_term = reward(make_td())
    assert list(per_term) == [AREA, "iou"]
    close(per_term[AREA], [1.0, 1.0, 1.0, 0.0, 1.0])  # area off by 25 % passes at tolerance 0.3
    close(total, [0.5 * a + i for a, i in zip([1.0, 1.0, 1.0, 0.0, 1.0], IOU)])
    # ... and fails at the default tolerance 0.2: the kwarg really reaches the function.
    close(single({"_target_": AREA}, make_td()), [1.0, 1.0, 1.0, 0.0, 0.0])


def _fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_example_module_and_yaml_build_the_reward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text().split("## Adding a reward", 1)[1].split("\n## ", 1)[0]
    (module_source, *_), (yaml_snippet,) = _fenced(text, "python"), _fenced(text, "yaml")
    assert module_source.startswith("# mypkg/rewards.py")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "rewards.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(tmp_path))

    config = OmegaConf.create(yaml_snippet)
    reward = CompositeReward.from_config(config.reward)
    assert [t.weight for t in reward.terms] == [1.0, 0.5]
    assert reward.terms[1].target == "mypkg.rewards.area_consistency"
    assert reward.terms[1].kwargs == {"tolerance": 0.3}
    total, per_term = reward(make_td())
    close(per_term["mypkg.rewards.area_consistency"], [1.0, 1.0, 1.0, 0.0, 1.0])
    close(total, [i + 0.5 * a for i, a in zip(IOU, [1.0, 1.0, 1.0, 0.0, 1.0])])

    # The same snippet through a typed recipe schema (how the lead's recipes load it).
    @dataclass
    class Recipe:
        reward: RewardConfig = field(default_factory=RewardConfig)

    typed = OmegaConf.merge(OmegaConf.structured(Recipe), OmegaConf.create(yaml_snippet))
    total_typed, _ = CompositeReward.from_config(typed.reward)(make_td())
    close(total_typed, total.tolist())
    # The schema's default is plain IoU.
    assert [t.name for t in CompositeReward.from_config(OmegaConf.structured(Recipe).reward).terms] == ["iou"]


def test_reward_term_forms_and_omegaconf() -> None:
    node = OmegaConf.structured(RewardTerm)  # a RewardTerm is itself a valid structured config
    assert set(node.keys()) == {"name", "target", "weight", "kwargs"}
    merged = OmegaConf.merge(node, {"target": AREA, "kwargs": {"tolerance": 0.3}})
    assert RewardTerm.from_config(merged) == RewardTerm(target=AREA, kwargs={"tolerance": 0.3})
    assert RewardTerm.from_config({"target": AREA}) == RewardTerm.from_config({"_target_": AREA})
    assert RewardTerm.from_config("iou") == RewardTerm(name="iou")
    assert RewardTerm.from_config({"name": "iou", "weight": 2}).weight == 2.0
    with pytest.raises(RewardError, match="_target_ or target, not both"):
        RewardTerm.from_config({"_target_": AREA, "target": AREA})


# --------------------------------------------------------------------------- bad input


def test_unknown_name_lists_the_available_rewards() -> None:
    with pytest.raises(RewardError) as info:
        CompositeReward(["iuo"])
    message = str(info.value)
    assert "'iuo'" in message and "did you mean 'iou'" in message
    assert "Available: delta_vs_reference, iou, j_and_f, memory_churn, presence" in message


def test_unimportable_dotted_path_is_named() -> None:
    with pytest.raises(RewardError, match=r"'no_such_pkg_xyz\.rewards\.fn'.*cannot import"):
        CompositeReward([{"_target_": "no_such_pkg_xyz.rewards.fn"}])
    with pytest.raises(RewardError, match=r"'example_rewards\.my_rewards\.nope'.*no attribute 'nope'"):
        CompositeReward([{"_target_": "example_rewards.my_rewards.nope"}])
    with pytest.raises(RewardError, match=r"'example_rewards\.no_module\.fn'.*no attribute 'no_module\.fn'"):
        CompositeReward([{"_target_": "example_rewards.no_module.fn"}])
    with pytest.raises(RewardError, match="dotted path"):
        CompositeReward([{"_target_": "area_consistency"}])


def test_import_failure_inside_the_users_module_is_reported_as_such() -> None:
    failed = r"importing 'example_rewards\.broken_import' failed.*sam2rl_missing_dependency"
    with pytest.raises(RewardError, match=failed):
        CompositeReward([{"_target_": "example_rewards.broken_import.fn"}])


def test_exactly_one_of_name_or_target() -> None:
    with pytest.raises(RewardError, match="exactly one of name .* got both"):
        CompositeReward([{"name": "iou", "_target_": AREA}])
    with pytest.raises(RewardError, match="exactly one of name .* got neither"):
        CompositeReward([{"weight": 2.0}])
    with pytest.raises(RewardError, match="got neither"):
        CompositeReward([RewardTerm()])


def test_bad_term_fields_are_rejected() -> None:
    with pytest.raises(RewardError, match=r"'iou'.*unknown key 'wieght'; did you mean 'weight'"):
        CompositeReward([{"name": "iou", "wieght": 2.0}])
    with pytest.raises(RewardError, match=r"'iou'.*weight must be a finite number"):
        CompositeReward([{"name": "iou", "weight": "heavy"}])
    with pytest.raises(RewardError, match=r"'iou'.*weight must be a finite number"):
        CompositeReward([{"name": "iou", "weight": float("nan")}])
    with pytest.raises(RewardError, match=r"'iou'.*kwargs must be a mapping"):
        CompositeReward([{"name": "iou", "kwargs": [1, 2]}])
    with pytest.raises(RewardError, match="at least one term"):
        CompositeReward([])
    with pytest.raises(RewardError, match="expected a name, a mapping"):
        CompositeReward([3])


def test_unknown_kwargs_fail_at_construction() -> None:
    with pytest.raises(RewardError, match=r"'iou'.*unknown kwargs \['tolerance'\]; it accepts none"):
        CompositeReward([{"name": "iou", "kwargs": {"tolerance": 0.3}}])
    with pytest.raises(RewardError, match=rf"'{AREA}'.*unknown kwargs \['tolernce'\]; it accepts \['tolerance'\]"):
        CompositeReward([{"_target_": AREA, "kwargs": {"tolernce": 0.3}}])
    with pytest.raises(RewardError, match=r"needs_threshold'.*missing required kwargs \['threshold'\]"):
        CompositeReward([{"_target_": f"{BROKEN}.needs_threshold"}])


def test_wrong_output_shape_fails_at_call_time_with_the_term_name() -> None:
    reward = CompositeReward(["iou", {"_target_": f"{BROKEN}.wrong_shape"}])
    with pytest.raises(RewardError, match=r"'example_rewards\.broken\.wrong_shape'.*shape \(5, 1\), expected \(5,\)"):
        reward(make_td())
    with pytest.raises(RewardError, match=r"not_a_tensor'.*returned float, expected a Tensor"):
        CompositeReward([{"_target_": f"{BROKEN}.not_a_tensor"}])(make_td())


@pytest.mark.parametrize("bad, counts", [("nan", "1 NaN, 0 inf"), ("inf", "0 NaN, 1 inf"), ("-inf", "0 NaN, 1 inf")])
def test_non_finite_output_fails_with_the_term_name(bad: str, counts: str) -> None:
    reward = CompositeReward([{"_target_": f"{BROKEN}.with_nan", "kwargs": {"bad": bad}}])
    with pytest.raises(RewardError, match=rf"with_nan'.*non-finite values \({counts}\) at batch indices \[1\]"):
        reward(make_td())
    # validate=False skips the (GPU-syncing) finiteness check.
    total, _ = CompositeReward([{"_target_": f"{BROKEN}.with_nan", "kwargs": {"bad": bad}}], validate=False)(make_td())
    assert not torch.isfinite(total[1])


def test_missing_needed_key_is_named() -> None:
    reward = CompositeReward(["iou", "delta_vs_reference"])
    with pytest.raises(RewardError, match=r"'delta_vs_reference': needs key 'reference_iou'"):
        reward(make_td(reference=False))
    # An undeclared read of an absent key is still reported with the term and the key.
    with pytest.raises(RewardError, match=r"reads_undeclared'.*foreground_prior"):
        CompositeReward([{"_target_": f"{BROKEN}.reads_undeclared"}])(make_td())


def test_input_must_be_a_tensordict() -> None:
    with pytest.raises(RewardError, match="tensordict.TensorDict"):
        CompositeReward(["iou"])(make_td().to_dict())
