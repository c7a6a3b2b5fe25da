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
