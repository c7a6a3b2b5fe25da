"""Contract every registered fusion strategy must keep, with every head: it trains, it accepts every
missing-modality pattern per sample, and the data of a missing modality never reaches the output."""

from __future__ import annotations

import itertools

import pytest
import torch

from fusemed.models import FUSIONS, HEADS, ModalityInfo, ModelConfig, TaskInfo, build_model
from fusemed.models.fusion import fusion_table

MODALITIES = [
    ModalityInfo("t1", "volume", (1, 8, 8, 8)),
    ModalityInfo("pet", "volume", (1, 8, 8, 8)),
    ModalityInfo("connectome", "graph", (6, 8)),  # 6 nodes, 2 node features
    ModalityInfo("clinical", "tabular", (6,)),  # 3 values | 3 missing indicators
]
TASKS = {
    "binary": TaskInfo("binary"),
    "multiclass": TaskInfo("multiclass", 3),
    "survival": TaskInfo("survival"),
}
# one sample per non-empty subset of the 4 modalities: 15 patterns in one batch
PATTERNS = torch.tensor(
    [p for p in itertools.product([False, True], repeat=len(MODALITIES)) if any(p)], dtype=torch.bool
)


def make_batch(present: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs, zero-filled where missing (as the data pipeline delivers them)."""
    g = torch.Generator().manual_seed(seed)
    inputs = {}
    for j, m in enumerate(MODALITIES):
        x = torch.randn(present.shape[0], *m.shape, generator=g)
        if m.kind == "graph":  # symmetric adjacency
            adj = x[:, :, : m.shape[0]]
            x[:, :, : m.shape[0]] = (adj + adj.transpose(1, 2)) / 2
        mask = present[:, j].view(-1, *([1] * len(m.shape)))
        inputs[m.name] = torch.where(mask, x, torch.zeros(()))
    return inputs


def make_target(task: TaskInfo, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if task.kind == "survival":
        time = torch.rand(n, generator=g) * 100
        event = (torch.arange(n) % 3 != 0).float()
        return torch.stack([time, event], dim=1)
    return torch.randint(0, task.n_classes, (n,), generator=g)


def with_noise_in_missing(inputs: dict[str, torch.Tensor], present: torch.Tensor, fill: str) -> dict:
    """Replace every missing slot with loud noise (or NaN): it must change nothing."""
    g = torch.Generator().manual_seed(123)
    noisy = {}
    for j, m in enumerate(MODALITIES):
        x = inputs[m.name]
        junk = torch.full_like(x, float("nan")) if fill == "nan" else 100 * torch.randn(x.shape, generator=g)
        noisy[m.name] = torch.where(present[:, j].view(-1, *([1] * len(m.shape))), x, junk)
    return noisy


def test_registries_hold_every_strategy_and_task() -> None:
    assert {"early", "late", "concat", "attention", "hemis", "poe", "lmf"} <= set(FUSIONS)
    assert set(TASKS) <= set(HEADS)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_strategy_documents_itself_in_the_catalogue(fusion: str) -> None:
    cls = FUSIONS[fusion]
    assert cls.mechanism and cls.on_missing and cls.source
    assert f"| `{fusion}` | {cls.mechanism} |" in fusion_table()


# the low-capacity encoders (and their non-default variants), selected together, under every strategy
ENCODER_SETS = {
    "regional-edge-linear": {"volume_encoder": "regional", "graph_encoder": "edge", "tabular_encoder": "linear"},
    "brainnetcnn-grid2": {"volume_encoder": "regional", "regional_grid": 2, "graph_encoder": "brainnetcnn"},
    "edge-rank2": {"graph_encoder": "edge", "edge_rank": 2},
}


@pytest.mark.parametrize("task_kind", sorted(TASKS))
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_fusion_contract(fusion: str, task_kind: str) -> None:
    check_fusion_contract(ModelConfig(fusion=fusion, embed_dim=16, hidden=16, volume_channels=(4, 8)), task_kind)


@pytest.mark.parametrize("encoders", sorted(ENCODER_SETS))
@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_fusion_contract_with_low_capacity_encoders(fusion: str, encoders: str) -> None:
    config = ModelConfig(fusion=fusion, embed_dim=16, hidden=16, volume_channels=(4, 8), **ENCODER_SETS[encoders])
    check_fusion_contract(config, "binary")
    check_every_parameter_in_the_graph(config.model_copy(update={"embed_dim": 8, "hidden": 8}))


def check_fusion_contract(config: ModelConfig, task_kind: str) -> None:
    torch.manual_seed(0)
    task = TASKS[task_kind]
    model = build_model(config, MODALITIES, task)
    inputs, target = make_batch(PATTERNS), make_target(task, len(PATTERNS))
    out_dim = task.n_classes if task_kind == "multiclass" else 1

    # one optimiser step: finite loss, gradient reaches every encoder and the head, weights move
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    output = model(inputs, PATTERNS)
    assert output.shape == (len(PATTERNS), out_dim)
    loss = model.loss(output, target)
    assert loss.ndim == 0 and torch.isfinite(loss)
    optimiser.zero_grad()
    loss.backward()
    for name, encoder in model.encoders.items():
        grads = [p.grad for p in encoder.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), f"no gradient reaches encoder {name}"
        assert all(torch.isfinite(g).all() for g in grads)
    assert model.head.linear.weight.grad.abs().sum() > 0
    before = model.head.linear.weight.detach().clone()
    optimiser.step()
    assert not torch.equal(before, model.head.linear.weight)

    # every missing pattern gives a finite output; missing data has no influence, even NaN
    model.eval()
    with torch.no_grad():
        reference = model(inputs, PATTERNS)
        assert torch.isfinite(reference).all()
        for fill in ("noise", "nan"):
            torch.testing.assert_close(
                model(with_noise_in_missing(inputs, PATTERNS, fill), PATTERNS), reference, rtol=0, atol=0
            )
        # a sample's output does not depend on the other samples in its batch
        for i in (0, 7, len(PATTERNS) - 1):
            alone = model({k: v[i : i + 1] for k, v in inputs.items()}, PATTERNS[i : i + 1])
            torch.testing.assert_close(alone, reference[i : i + 1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_training_is_deterministic_under_a_seed(fusion: str) -> None:
    def run() -> torch.Tensor:
        torch.manual_seed(42)
        config = ModelConfig(fusion=fusion, embed_dim=8, hidden=8, volume_channels=(4,))
        model = build_model(config, MODALITIES, TASKS["binary"])
        inputs, target = make_batch(PATTERNS), make_target(TASKS["binary"], len(PATTERNS))
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            optimiser.zero_grad()
            model.loss(model(inputs, PATTERNS), target).backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            return model(inputs, PATTERNS)

    torch.testing.assert_close(run(), run(), rtol=0, atol=0)


def test_late_fusion_averages_the_per_modality_logits() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(fusion="late", embed_dim=8, hidden=8), MODALITIES, TASKS["multiclass"]).eval()
    full = torch.ones(1, len(MODALITIES), dtype=torch.bool)
    inputs = make_batch(full)
    with torch.no_grad():
        together = model(inputs, full)
        alone = [model(inputs, torch.eye(len(MODALITIES), dtype=torch.bool)[j : j + 1]) for j in range(4)]
    torch.testing.assert_close(together, torch.stack(alone).mean(dim=0), rtol=1e-5, atol=1e-5)


def test_early_fusion_stacks_volumes_with_presence_channels() -> None:
    model = build_model(ModelConfig(fusion="early"), MODALITIES, TASKS["binary"])
    assert list(model.encoders) == ["volume_stack", "connectome", "clinical"]
    present = torch.tensor([[True, False, True, False]])
    streams, stream_present = model.fusion.prepare(make_batch(present), present)
    stack = streams["volume_stack"]
    assert stack.shape == (1, 4, 8, 8, 8)  # t1, pet, presence(t1), presence(pet)
    assert torch.all(stack[0, 1] == 0) and torch.all(stack[0, 2] == 1) and torch.all(stack[0, 3] == 0)
    assert stream_present.tolist() == [[True, True, False]]


def test_early_fusion_rejects_volumes_on_different_grids() -> None:
    odd = [ModalityInfo("t1", "volume", (1, 8, 8, 8)), ModalityInfo("pet", "volume", (1, 6, 8, 8))]
    with pytest.raises(ValueError, match="one grid"):
        build_model(ModelConfig(fusion="early"), odd, TASKS["binary"])


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_parameter_gets_a_gradient_even_when_a_modality_is_absent_from_the_batch(fusion: str) -> None:
    """What DDP needs to run without find_unused_parameters: no parameter is left out of the graph."""
    check_every_parameter_in_the_graph(ModelConfig(fusion=fusion, embed_dim=8, hidden=8, volume_channels=(4,)))


def check_every_parameter_in_the_graph(config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(config, MODALITIES, TASKS["binary"])
    present = PATTERNS[~PATTERNS[:, 1]]  # nobody has a PET scan in this batch
    model.loss(model(make_batch(present), present), make_target(TASKS["binary"], len(present))).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters outside the graph: {missing}"
    pet_grads = [p.grad for n, p in model.named_parameters() if n.startswith("encoders.pet.")]
    assert all(torch.all(g == 0) for g in pet_grads)  # present in the graph, but not trained by nothing
