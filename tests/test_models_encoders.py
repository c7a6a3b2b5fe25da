"""Contract every registered encoder must keep, and the fsaverage5 mesh graphs the surface encoders use."""

from __future__ import annotations

import pytest
import torch

from fusemed.models import ENCODERS, ModalityInfo, ModelConfig, build_encoder
from fusemed.models.mesh import coarse_mesh, mesh_edge_index

SAMPLE_SHAPES = {
    "volume": (1, 16, 12, 10),  # anisotropic grid
    "graph": (10, 13),  # 10 nodes, 3 node features
    "surface": (20484, 2),  # fsaverage5, 2 features per vertex
    "tabular": (10,),
}


# encoders whose config options switch to a different computation are checked in each variant
VARIANTS = {"edge": [{"edge_rank": 2}], "regional": [{"regional_grid": 2}]}
CASES = [(name, {}) for name in sorted(ENCODERS)] + [
    (name, options) for name, variants in VARIANTS.items() for options in variants
]


def encoder_config(name: str, kind: str, **options: object) -> ModelConfig:
    return ModelConfig(embed_dim=12, hidden=16, volume_channels=(4, 8), **{f"{kind}_encoder": name}, **options)


CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in options.items()) for name, options in CASES]


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_encoder_contract(name: str, options: dict) -> None:
    torch.manual_seed(0)
    kind = ENCODERS[name].kind
    info = ModalityInfo("x", kind, SAMPLE_SHAPES[kind])
    encoder = build_encoder(info, encoder_config(name, kind, **options))
    x = torch.randn(3, *info.shape, requires_grad=True)

    encoder.train()
    z = encoder(x)
    assert z.shape == (3, 12) and torch.isfinite(z).all()
    z.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient reaches the input"
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad), "unused parameters"
    assert encoder(x[:1]).shape == (1, 12)  # a batch of one (a rare modality) trains

    encoder.eval()
    with torch.no_grad():
        batch = encoder(x)
        other = x.clone()
        other[1:] = torch.randn_like(other[1:]) * 10
        # samples are encoded independently: the others in the batch change nothing
        torch.testing.assert_close(encoder(other)[0], batch[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(encoder(x[:1])[0], batch[0], rtol=1e-5, atol=1e-5)


def one_edge_graphs(n: int = 200, n_nodes: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric N(0, 1) adjacencies whose binary label shifts ONE edge weight, (3, 7), by +-2 (4 sd apart);
    the two nodes' other 18 edges each are pure noise, so a node-level summary dilutes the signal."""
    g = torch.Generator().manual_seed(seed)
    adj = torch.randn(n, n_nodes, n_nodes, generator=g)
    adj = (adj + adj.transpose(1, 2)) / 2**0.5
    adj.diagonal(dim1=1, dim2=2).zero_()
    y = (torch.arange(n) % 2).float()[torch.randperm(n, generator=g)]
    adj[:, 3, 7] += 2.0 * (2 * y - 1)
    adj[:, 7, 3] = adj[:, 3, 7]
    return adj, y


def auroc(score: torch.Tensor, y: torch.Tensor) -> float:
    pos, neg = score[y == 1], score[y == 0]
    return float((pos[:, None] > neg[None]).float().mean() + 0.5 * (pos[:, None] == neg[None]).float().mean())


def fit_on_one_edge_graphs(name: str, **options: object) -> tuple[float, torch.nn.Module]:
    """Encoder + linear head, 300 full-batch Adam steps on 140 graphs; AUROC on the 60 held out."""
    torch.manual_seed(0)
    adj, y = one_edge_graphs()
    info = ModalityInfo("connectome", "graph", tuple(adj.shape[1:]))
    # input dropout 0.5: with p = 190 edges > 140 samples, Adam overfits an unregularised linear readout
    config = ModelConfig(graph_encoder=name, embed_dim=16, hidden=16, dropout=0.5, **options)
    model = torch.nn.Sequential(build_encoder(info, config), torch.nn.Linear(16, 1))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(adj[:140]).squeeze(-1), y[:140]).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        return auroc(model(adj[140:]).squeeze(-1), y[140:]), model


@pytest.mark.parametrize("edge_rank", [0, 1])
def test_edge_encoder_finds_a_label_carried_by_one_edge(edge_rank: int) -> None:
    score, model = fit_on_one_edge_graphs("edge", edge_rank=edge_rank)
    assert score >= 0.9  # sklearn's logistic regression on the edge vector: 0.99 here
    if edge_rank == 0:  # and it is that edge's weight that does it: the largest of the end-to-end linear map
        encoder, head = model
        weights = (head.weight @ encoder.project.weight).squeeze(0).abs()
        assert (int(encoder.rows[weights.argmax()]), int(encoder.cols[weights.argmax()])) == (3, 7)


def test_message_passing_misses_a_label_carried_by_one_edge() -> None:
    """The same training with the default `dense_gcn`: each node's row is averaged with its neighbours',
    so edge (3, 7) is one of many entries summed together (0.59-0.77 over 6 data seeds; edge: 0.92-0.97)."""
    score, _ = fit_on_one_edge_graphs("dense_gcn")
    assert score < 0.8


def test_wrong_kind_of_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="encodes tabular"):
        ModelConfig(volume_encoder="mlp")


def test_surface_encoder_refuses_a_vertex_count_that_is_not_the_mesh() -> None:
    with pytest.raises(ValueError, match="20484"):
        build_encoder(ModalityInfo("cortex", "surface", (1000, 1)), ModelConfig())


def test_fsaverage5_vertex_graph() -> None:
    edges = mesh_edge_index("fsaverage5")
    # a closed triangulated sphere has V + F - 2 edges: 10242 + 20480 - 2 per hemisphere, both directions
    assert edges.shape == (2, 2 * 2 * 30720)
    assert int(edges.max()) == 20483
    left, right = edges < 10242
    assert torch.equal(left, right), "an edge joins the two hemispheres"


def test_coarse_mesh_clusters_cover_the_mesh_evenly() -> None:
    coarse = coarse_mesh("fsaverage5", 3)
    assert coarse.n_clusters == 2 * 642
    sizes = torch.bincount(coarse.assign, minlength=coarse.n_clusters)
    assert sizes.sum() == 20484 and sizes.min() >= 8 and sizes.max() <= 24
    src, dst = coarse.edge_index
    assert torch.equal(torch.sort(src * 10_000 + dst).values, torch.sort(dst * 10_000 + src).values)  # symmetric
    assert not torch.any(src == dst)
    assert torch.equal(src < 642, dst < 642), "clusters of different hemispheres are connected"
    # each cluster touches about six neighbours, as on an icosahedral mesh
    degree = torch.bincount(src, minlength=coarse.n_clusters).float()
    assert degree.min() >= 4 and 5.5 < degree.mean() < 7.5
