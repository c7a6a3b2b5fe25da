"""`fusemed.datasets`: real datasets shipped in packages and the independent generator, as valid cohorts."""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fusemed.cohort import read_graph, validate_cohort
from fusemed.datasets import DATASETS, load_dataset


def _needs(package: str, install: str):
    return pytest.mark.skipif(importlib.util.find_spec(package) is None,
                              reason=f"{package} not installed ({install})")


def _hashes(folder: Path) -> dict[str, str]:
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def _validated(folder: Path) -> dict:
    report = validate_cohort(folder)
    assert report.ok, report.problems
    assert not report.warnings, report.warnings
    return report.summary


# name, package, install, subjects, {modality: columns or None}, {target: class counts or events}
REAL = [
    ("mice", "graspologic", "pip install --no-deps graspologic==3.4.4", 32,
     ["connectome", "anatomy"], "anatomy", {"genotype": {"0": 8, "1": 8, "2": 8, "3": 8}}),
    ("whas500", "sksurv", "pip install scikit-survival", 500,
     ["clinical", "vitals"], "vitals", {"death_1y": {"0": 362, "1": 138}, "survival": 215}),
    ("wdbc", "sklearn", "pip install scikit-learn", 569,
     ["mean", "se", "worst"], None, {"malignant": {"0": 357, "1": 212}}),
    ("flchain", "sksurv", "pip install scikit-survival", 7874,
     ["demographics", "flc", "renal"], "flc", {"survival": 2169}),
    ("gbsg2", "sksurv", "pip install scikit-survival", 686,
     ["clinical", "tumour", "receptors"], "receptors", {"survival": 299}),
    ("aids", "sksurv", "pip install scikit-survival", 1151,
     ["demographics", "clinical", "immunology"], "immunology", {"survival": 96}),
]


@pytest.mark.parametrize("name,package,install,n,modalities,dropped,targets",
                         [pytest.param(*r, marks=_needs(r[1], r[2]), id=r[0]) for r in REAL])
def test_real_dataset_is_a_valid_cohort(tmp_path: Path, name, package, install, n, modalities, dropped,
                                        targets) -> None:
    summary = _validated(load_dataset(name, tmp_path / "a", seed=1, missing=0.25))
    assert summary["subjects"] == n
    assert list(summary["availability"]) == modalities
    for target, expected in targets.items():
        got = summary["targets"][target]
        assert (got["counts"] if isinstance(expected, dict) else got["events"]) == expected
    if dropped is not None:  # one view dropped for exactly round(0.25 n) subjects (flchain: + creatinine's own)
        lost = n - summary["availability"][dropped]
        assert lost == round(0.25 * n)
    else:  # wdbc: every view dropped independently, about a quarter each
        for view in modalities:
            assert abs(1 - summary["availability"][view] / n - 0.25) < 0.06
    assert all(pattern for pattern in summary["patterns"])  # nobody has nothing
    # the same seed writes the same files; another seed drops other subjects
    assert _hashes(tmp_path / "a") == _hashes(load_dataset(name, tmp_path / "b", seed=1, missing=0.25))
    other = pd.read_csv(load_dataset(name, tmp_path / "c", seed=2, missing=0.25) / "manifest.csv")
    assert not other.equals(pd.read_csv(tmp_path / "a" / "manifest.csv"))


@_needs("graspologic", "pip install --no-deps graspologic==3.4.4")
def test_mice_connectomes_are_symmetric_streamline_counts(tmp_path: Path) -> None:
    root = load_dataset("mice", tmp_path / "mice")
    manifest = pd.read_csv(root / "manifest.csv")
    assert manifest["brain_volume"].between(300, 600).all()  # mm³: a mouse brain is ~0.4 cm³
    graph = read_graph(root / manifest["connectome"].iloc[0])
    a = graph.adjacency
    assert a.shape == (332, 332) and np.array_equal(a, a.T) and not np.diag(a).any() and a.max() > 1000


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fusemed.datasets import DatasetUnavailable, _common

    monkeypatch.setattr(_common.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetUnavailable, match=r"pip install --no-deps graspologic==3\.4\.4"):
        load_dataset("mice", tmp_path)


def test_unknown_dataset_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="did you mean 'mice'"):
        load_dataset("mcie", tmp_path)
    with pytest.raises(ValueError, match=r"missing must be a share"):
        load_dataset("wdbc", tmp_path, missing=1.0)


# -- the independent generator -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def independent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_dataset("independent", tmp_path_factory.mktemp("ind") / "full", seed=0, subjects=240)


def _auroc_cv(x: np.ndarray, y: np.ndarray, c: float) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, l1_ratio=1.0, solver="liblinear"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                                   method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def test_independent_oracle_and_single_edge_signal(independent: Path) -> None:
    from sklearn.metrics import roc_auc_score

    summary = _validated(independent)
    assert summary["subjects"] == 240 and list(summary["availability"].values()) == [240] * 4
    manifest = pd.read_csv(independent / "manifest.csv")
    oracle = pd.read_csv(independent / "truth" / "oracle.csv")
    assert list(oracle["subject"]) == list(manifest["subject"])
    y = manifest["outcome"].to_numpy()
    assert roc_auc_score(y, oracle["p_outcome"]) >= 0.8
    assert manifest[["age", "marker", "score"]].isna().any().all()  # cells missing inside the table

    adjacency = np.stack([read_graph(independent / p).adjacency for p in manifest["connectome"]])
    upper = np.triu_indices(adjacency.shape[1], k=1)
    edges, degrees = adjacency[:, upper[0], upper[1]], adjacency.sum(axis=2)
    on_edges, on_degrees = _auroc_cv(edges, y, 0.1), _auroc_cv(degrees, y, 0.1)
    assert on_edges >= 0.75, on_edges
    assert on_degrees <= on_edges - 0.15, (on_edges, on_degrees)


def test_independent_missingness_is_mnar_and_deterministic(tmp_path: Path) -> None:
    root = load_dataset("independent", tmp_path / "a", seed=3, missing=0.3, subjects=120)
    summary = _validated(root)
    assert all(pattern for pattern in summary["patterns"])  # nobody has nothing
    latents = pd.read_csv(root / "truth" / "latents.csv")
    dropped = latents.filter(like="dropped_").to_numpy()
    assert abs(dropped.mean() - 0.3) < 0.07
    high = (latents["eta"] > latents["eta"].median()).to_numpy()
    assert dropped[high].mean() > dropped[~high].mean() + 0.1  # high risk lacks modalities more often
    manifest = pd.read_csv(root / "manifest.csv")
    assert manifest["perfusion"].isna().to_numpy().tolist() == latents["dropped_perfusion"].astype(bool).tolist()
    assert _hashes(root) == _hashes(load_dataset("independent", tmp_path / "b", seed=3, missing=0.3,
                                                 subjects=120))



def test_independent_observed_oracle_is_the_full_one_when_everything_shows(independent: Path) -> None:
    """Subjects whose present data reveal every latent get p_observed = p_outcome; others do not."""
    manifest = pd.read_csv(independent / "manifest.csv")
    oracle = pd.read_csv(independent / "truth" / "oracle.csv")
    shows_all = manifest[["age", "marker"]].notna().all(axis=1).to_numpy()  # no modality missing at 0 %
    assert 0 < shows_all.sum() < len(manifest)
    np.testing.assert_allclose(oracle.loc[shows_all, "p_observed"], oracle.loc[shows_all, "p_outcome"], atol=1e-6)
    assert (oracle.loc[~shows_all, "p_observed"] - oracle.loc[~shows_all, "p_outcome"]).abs().max() > 0.05


def test_independent_observed_oracle_loses_auroc_as_modalities_go_and_reads_the_pattern() -> None:
    from sklearn.metrics import roc_auc_score

    from fusemed.datasets.independent import drop_probability, risk_logit
    from fusemed.datasets.independent_oracle import observed_oracle

    rng = np.random.default_rng(0)
    n = 400
    latents = rng.standard_normal((n, 4))
    eta = risk_logit(*latents.T)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    aurocs = []
    for shown in ([1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]):  # perfusion, connectome, table go
        revealed = np.tile(np.array(shown, dtype=bool), (n, 1))
        p = observed_oracle(latents, revealed, np.zeros(n, int), 4, risk_logit, None, n_samples=20_000)
        aurocs.append(roc_auc_score(y, p))
    assert aurocs == sorted(aurocs, reverse=True) and aurocs[0] - aurocs[-1] > 0.2, aurocs

    # MNAR: the same latents shown, but the anatomy missing too: a subject missing more is at higher risk
    q = drop_probability(eta, 0.3)
    same = np.zeros((2, 4))
    revealed = np.tile(np.array([0, 0, 1, 1], dtype=bool), (2, 1))
    few, many = observed_oracle(same, revealed, np.array([2, 3]), 4, risk_logit, q, n_samples=20_000)
    assert many > few + 0.05, (few, many)

# -- benchmark grid and CLI -------------------------------------------------------------------------------
def test_benchmark_grid_takes_a_dataset(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from fusemed.benchmark import BenchmarkConfig, plan
    from fusemed.benchmark.cells import simulate_job

    config = BenchmarkConfig.model_validate({"cohorts": [{"dataset": "wdbc", "missing": [0.0, 0.2], "seed": 0},
                                                         {"dataset": "independent", "subjects": 30}]})
    jobs, _ = plan(config, tmp_path)
    assert [j.cohort_id for j in jobs] == ["wdbc-miss00-s0", "wdbc-miss20-s0", "independent-n30-miss00-s0"]
    assert not jobs[1].complete
    simulate_job(jobs[1])
    assert jobs[1].complete and _validated(jobs[1].folder)["availability"]["mean"] < 569
    with pytest.raises(ValidationError, match="did you mean 'mice'"):
        BenchmarkConfig.model_validate({"cohorts": [{"dataset": "mcie", "missing": [0.0], "seed": 0}]})
    with pytest.raises(ValidationError, match="does not use subjects"):
        BenchmarkConfig.model_validate({"cohorts": [{"dataset": "wdbc", "subjects": 50}]})
    assert sorted(DATASETS) == ["aids", "flchain", "gbsg2", "independent", "mice", "wdbc", "whas500"]


def test_dataset_cli(tmp_path: Path) -> None:
    from fusemed.cli.main import app

    result = CliRunner().invoke(app, ["dataset", "independent", "--out", str(tmp_path / "c"), "-n", "12",
                                      "--missing", "0.2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "wrote independent (12 subjects" in result.output
    result = CliRunner().invoke(app, ["dataset", "wdcb", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "did you mean 'wdbc'" in result.output
