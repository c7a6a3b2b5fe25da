"""What users of `fusemed.models` rely on besides the contracts: clear errors, ModDrop, head losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchsurv.loss.cox import neg_partial_log_likelihood

from fusemed.models import FUSIONS, ModalityInfo, ModelConfig, TaskInfo, build_model, modality_dropout
from fusemed.models.heads import HEADS

MODALITIES = [ModalityInfo("t1", "volume", (1, 8, 8, 8)), ModalityInfo("clinical", "tabular", (4,))]


def small_model(fusion: str = "concat", task: TaskInfo | None = None):
    return build_model(ModelConfig(fusion=fusion, embed_dim=8, hidden=8), MODALITIES, task or TaskInfo("binary"))


def batch(n: int) -> dict[str, torch.Tensor]:
    return {"t1": torch.randn(n, 1, 8, 8, 8), "clinical": torch.randn(n, 4)}


def test_misspelt_names_get_did_you_mean() -> None:
    with pytest.raises(ValueError, match="did you mean 'attention'"):
        ModelConfig(fusion="atention")
    with pytest.raises(ValueError, match="did you mean 'densenet'"):
        ModelConfig(volume_encoder="densnet")
    with pytest.raises(KeyError, match="did you mean 'hemis'"):
        FUSIONS["hemsi"]
    with pytest.raises(ValueError, match="extra"):
        ModelConfig(fusion="concat", embeddim=3)  # typo in a key is not silently ignored


def test_a_sample_without_any_modality_is_refused_by_index() -> None:
    present = torch.tensor([[True, False], [False, False], [False, True]])
    with pytest.raises(ValueError, match=r"samples \[1\]"):
        small_model()(batch(3), present)


def test_bad_shapes_name_the_modality() -> None:
    present = torch.ones(2, 2, dtype=torch.bool)
    bad = batch(2) | {"clinical": torch.randn(2, 5)}
    with pytest.raises(ValueError, match="'clinical'"):
        small_model()(bad, present)
    with pytest.raises(ValueError, match="columns"):
        small_model()(batch(2), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind"):
        ModalityInfo("eeg", "timeseries", (3,))
    with pytest.raises(ValueError, match="attention_heads"):
        ModelConfig(fusion="attention", embed_dim=10, attention_heads=4)


def test_modality_dropout_keeps_a_subset_and_never_empties_a_sample() -> None:
    g = torch.Generator().manual_seed(0)
    present = torch.rand(2000, 4, generator=g) < 0.7
    present[~present.any(1), 0] = True
    dropped = modality_dropout(present, 0.5, torch.Generator().manual_seed(1))
    assert dropped.dtype == torch.bool and not torch.any(dropped & ~present)
    assert dropped.any(1).all()
    rate = 1 - dropped.sum() / present.sum()
    assert 0.35 < rate < 0.5  # p=0.5, minus the rescued last modalities
    again = modality_dropout(present, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(dropped, again)
    assert torch.equal(modality_dropout(present, 0.0), present)
    everything = modality_dropout(present, 1.0, torch.Generator().manual_seed(2))
    assert torch.all(everything.sum(1) == 1) and not torch.any(everything & ~present)
    with pytest.raises(ValueError, match="no modality"):
        modality_dropout(torch.zeros(2, 3, dtype=torch.bool), 0.1)


def test_heads_use_the_standard_losses() -> None:
    torch.manual_seed(0)
    out = torch.randn(6, 1)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    binary = HEADS["binary"](4, TaskInfo("binary"))
    torch.testing.assert_close(binary.loss(out, y), F.binary_cross_entropy_with_logits(out[:, 0], y.float()))
    torch.testing.assert_close(binary.predict(out), torch.sigmoid(out[:, 0]))
    multi = HEADS["multiclass"](4, TaskInfo("multiclass", 3))
    logits = torch.randn(6, 3)
    torch.testing.assert_close(multi.loss(logits, y), F.cross_entropy(logits, y))
    torch.testing.assert_close(multi.predict(logits).sum(1), torch.ones(6))
    surv = HEADS["survival"](4, TaskInfo("survival"))
    time, event = torch.tensor([5.0, 3.0, 8.0, 1.0, 9.0, 2.0]), y.bool()
    expected = neg_partial_log_likelihood(out[:, 0], event, time)
    torch.testing.assert_close(surv.loss(out, torch.stack([time, event.float()], 1)), expected)
    torch.testing.assert_close(surv.loss(out, (time, event)), expected)


def test_survival_batch_without_events_gives_a_zero_loss_that_backpropagates() -> None:
    model = small_model(task=TaskInfo("survival"))
    present = torch.ones(4, 2, dtype=torch.bool)
    output = model(batch(4), present)
    loss = model.loss(output, torch.stack([torch.rand(4), torch.zeros(4)], 1))
    assert loss.item() == 0.0
    loss.backward()
    assert model.head.linear.weight.grad is not None


def test_state_dict_round_trip_gives_the_same_predictions(tmp_path) -> None:
    torch.manual_seed(0)
    model = small_model("attention").eval()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(1)
    clone = small_model("attention").eval()
    clone.load_state_dict(torch.load(path, weights_only=True))
    present = torch.tensor([[True, True], [True, False], [False, True]])
    x = batch(3)
    with torch.no_grad():
        torch.testing.assert_close(clone(x, present), model(x, present))


def test_a_surface_modality_trains_and_its_absence_leaves_no_trace() -> None:
    torch.manual_seed(0)
    modalities = [ModalityInfo("cortex", "surface", (20484, 1)), ModalityInfo("clinical", "tabular", (4,))]
    model = build_model(ModelConfig(fusion="hemis", embed_dim=8, hidden=8), modalities, TaskInfo("binary"))
    present = torch.tensor([[True, True], [False, True], [True, False]])
    inputs = {"cortex": torch.randn(3, 20484, 1), "clinical": torch.randn(3, 4)}
    inputs["cortex"][1] = 0
    model.loss(model(inputs, present), torch.tensor([1, 0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        reference = model(inputs, present)
        inputs["cortex"][1] = torch.randn(20484, 1) * 50
        torch.testing.assert_close(model(inputs, present), reference, rtol=0, atol=0)


@pytest.mark.parametrize("task", [TaskInfo("binary"), TaskInfo("survival")])
def test_mixed_precision_forward_and_loss(task: TaskInfo) -> None:
    model = small_model("concat", task)
    present = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    target = torch.tensor([[3.0, 1.0], [1.0, 0.0], [2.0, 1.0], [5.0, 1.0]]) if task.kind == "survival" else None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(batch(4), present)
        loss = model.loss(output, target if target is not None else torch.tensor([0, 1, 1, 0]))
    loss.backward()
    assert torch.isfinite(loss) and model.head.linear.weight.grad is not None


def test_cohort_kinds_can_describe_the_model_directly() -> None:
    from fusemed.cohort import ModalityKind, TargetKind

    info = ModalityInfo("clinical", ModalityKind.TABULAR, [4])
    task = TaskInfo(TargetKind.SURVIVAL, 1)
    assert (info.kind, info.shape, task.kind) == ("tabular", (4,), "survival")
    model = build_model(ModelConfig(embed_dim=8, hidden=8), [info], task)
    assert model({"clinical": torch.randn(2, 4)}, torch.ones(2, 1, dtype=torch.bool)).shape == (2, 1)


def test_declared_registries_match_what_the_modules_register() -> None:
    """Fusion and baseline names are declared (so a config is checked without torch); the declaration and
    the classes must agree: each declared module registers its name, and no class registers an undeclared one."""
    import importlib

    from fusemed.models.registry import BASELINES, FUSIONS

    for registry in (FUSIONS, BASELINES):
        declared = dict(registry._modules)
        for name, module in declared.items():
            importlib.import_module(module)
            assert registry[name].name == name
        assert set(registry._items) == set(declared)
