"""Classical baselines: every registered estimator keeps the deep heads' output contract on feature
matrices with missing modalities, is reproducible and persists without pickle; the feature maps put a
missing modality in a NaN block and carry the signal of single edges / regions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit, logsumexp
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sksurv.metrics import concordance_index_censored
from threadpoolctl import threadpool_limits

from fusemed.models.baselines import BASELINES, Baseline, FeatureMap
from fusemed.models.baselines.features.base import EXTRACTORS
from fusemed.models.config import TASK_KINDS, TaskInfo

KINDS = {"t1": "volume", "conn": "graph", "clinical": "tabular"}
CASES = [(name, kind) for name in sorted(BASELINES) for kind in BASELINES[name].tasks]
TASK = {"binary": TaskInfo("binary"), "multiclass": TaskInfo("multiclass", 3), "survival": TaskInfo("survival")}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """OpenMP oversubscription on a shared 2-core machine makes tree fits 100x slower."""
    with threadpool_limits(1):
        yield


def make_items(n: int, seed: int, missing: float = 0.25) -> tuple[list[dict], np.ndarray]:
    """Preprocessed-looking samples of three modalities (each missing at rate `missing`) and a latent score."""
    rng = np.random.default_rng(seed)
    items, score = [], rng.normal(size=n)
    for i in range(n):
        t1 = rng.normal(size=(1, 8, 8, 8)) + score[i] * (np.arange(8) < 4)[None, :, None, None]
        adj = rng.normal(size=(6, 6))
        adj = (adj + adj.T) / 2
        adj[1, 4] = adj[4, 1] = score[i] + 0.3 * rng.normal()
        conn = np.concatenate([adj, rng.normal(size=(6, 1))], axis=1)
        values = np.array([score[i] + 0.5 * rng.normal(), rng.normal(), 0.0])
        flags = np.array([rng.random() < 0.2, 0.0, 1.0])  # the third variable is never measured
        clinical = np.concatenate([np.where(flags > 0, 0.0, values), flags])
        item = {"t1": t1, "conn": conn, "clinical": clinical}
        for name in KINDS:
            if rng.random() < missing and len(item) > 1:
                del item[name]
        items.append(item)
    return items, score


def targets(kind: str, score: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "binary":
        return (score > 0).astype(int)
    if kind == "multiclass":
        return np.digitize(score, [-0.4, 0.4])
    time = np.exp(-score + 0.3 * rng.normal(size=len(score)))
    return np.stack([time, (rng.random(len(score)) < 0.7).astype(float)], axis=1)


@pytest.fixture(scope="module")
def data() -> dict:
    train, s_train = make_items(40, seed=0)
    test, s_test = make_items(15, seed=1)
    test[0] = {"clinical": test[0].get("clinical", train[0]["clinical"])}  # only one modality present
    fm = FeatureMap.fit(train, KINDS)
    return {"fm": fm, "X": fm.transform(train), "X_test": fm.transform(test), "s": s_train, "s_test": s_test}


@pytest.fixture(scope="module")
def fitted(data) -> dict:
    """Every (baseline, task), fitted once on the shared training matrix."""
    out = {}
    for name, kind in CASES:
        y = targets(kind, data["s"], 0)
        out[name, kind] = BASELINES[name](TASK[kind], seed=0).fit(data["X"], y)
    return out


# --- the estimator contract -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,kind", CASES)
def test_decision_has_the_deep_head_format(name, kind, data, fitted):
    est, X = fitted[name, kind], data["X_test"]
    assert np.isnan(X[0, data["fm"].blocks["t1"]]).all()  # whole-modality NaN rows are in the test matrix
    assert np.isnan(data["X"]).all(axis=0).any()  # and a column never measured in training
    out = est.decision(X)
    assert out.dtype == np.float64 and out.shape == (len(X), est.out_dim) and np.isfinite(out).all()
    if kind == "binary":
        np.testing.assert_allclose(expit(out[:, 0]), est.model_.predict_proba(X)[:, 1], atol=2e-6)
    elif kind == "multiclass":
        np.testing.assert_allclose(logsumexp(out, axis=1), 0.0, atol=1e-9)
        np.testing.assert_allclose(np.exp(out), est.model_.predict_proba(X), atol=2e-6)
    else:  # log-risk: higher for the subjects who fail earlier
        y = targets(kind, data["s_test"], 1)
        assert concordance_index_censored(y[:, 1] > 0, y[:, 0], out[:, 0])[0] > 0.7


@pytest.mark.parametrize("name,kind", CASES)
def test_same_seed_same_model_and_save_load_round_trip(name, kind, data, fitted, tmp_path):
    est = fitted[name, kind]
    again = BASELINES[name](TASK[kind], seed=0).fit(data["X"], targets(kind, data["s"], 0))
    np.testing.assert_array_equal(again.decision(data["X_test"]), est.decision(data["X_test"]))

    files = est.save(tmp_path / "fold.0")
    assert sorted(p.name for p in files) == ["fold.0.json", "fold.0.skops"]
    loaded = Baseline.load(tmp_path / "fold.0")
    assert type(loaded) is type(est) and loaded.task == est.task and loaded.seed == 0
    np.testing.assert_array_equal(loaded.decision(data["X_test"]), est.decision(data["X_test"]))


@pytest.mark.parametrize("name,kind", CASES)
def test_unfitted_use_raises_not_fitted(name, kind, data, tmp_path):
    est = BASELINES[name](TASK[kind])
    with pytest.raises(NotFittedError):
        est.decision(data["X_test"])
    with pytest.raises(NotFittedError):
        est.save(tmp_path / "m")


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_unsupported_task_is_a_clear_error(name):
    for kind in set(TASK_KINDS) - set(BASELINES[name].tasks):
        with pytest.raises(ValueError, match=f"handles .* not '{kind}'"):
            BASELINES[name](TASK[kind])


def test_registry_names_tasks_and_typos():
    assert BASELINES["logistic"].tasks == ("binary", "multiclass")
    assert BASELINES["gbm"].tasks == ("binary", "multiclass")
    assert BASELINES["cox"].tasks == ("survival",)
    assert BASELINES["rsf"].tasks == ("survival",)
    with pytest.raises(KeyError, match="did you mean 'logistic'"):
        BASELINES["logisitc"]


@pytest.mark.parametrize("name", ["logistic", "gbm"])
def test_tiny_classes_and_a_class_unseen_in_training(name):
    """n=20 with a 2-sample class fits; a task class absent from training still gets a finite column."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 5))
    y = np.array([2, 2] + [0, 1] * 9)
    out = BASELINES[name](TASK["multiclass"]).fit(X, y).decision(X)
    assert out.shape == (20, 3) and np.isfinite(out).all()
    unseen = BASELINES[name](TaskInfo("multiclass", 4)).fit(X, y).decision(X)
    np.testing.assert_allclose(logsumexp(unseen, axis=1), 0.0, atol=1e-9)
    assert (unseen[:, 3] < np.log(1e-5)).all()  # the never-seen class is (almost) never predicted


def test_load_refuses_a_file_that_needs_other_types(data, fitted, tmp_path):
    import os

    import skops.io as sio

    fitted["logistic", "binary"].save(tmp_path / "m")
    sio.dump({"payload": os.system}, tmp_path / "m.skops")  # what a malicious file would smuggle in
    with pytest.raises(ValueError, match="refusing .*system"):
        Baseline.load(tmp_path / "m")


# --- the feature maps ---------------------------------------------------------------------------------
def test_graph_edge_vector_carries_a_single_edge_label():
    """The edge lands in the column named after it and the model finds it among 190 edges.

    The effect is large (5 SD) on purpose: with p ~ n an L2 model spreads weight over every noise edge
    (at 3 SD it reaches AUROC ~0.82-0.86, gbm ~0.98); this test is about the feature map, not the penalty.
    """
    rng = np.random.default_rng(0)

    def graphs(n: int) -> tuple[list[dict], np.ndarray]:
        y = rng.integers(0, 2, n)
        adj = rng.normal(size=(n, 20, 20))
        adj = (adj + adj.transpose(0, 2, 1)) / 2
        adj[:, 3, 7] = adj[:, 7, 3] = y * 5.0 + rng.normal(size=n)
        return [{"conn": np.concatenate([a, rng.normal(size=(20, 2))], axis=1)} for a in adj], y

    train, y_train = graphs(200)
    test, y_test = graphs(200)
    fm = FeatureMap.fit(train, {"conn": "graph"})
    assert fm.n_features == 20 * 19 // 2 + 2
    assert fm.transform(train)[0, fm.feature_names.index("conn:e3_7")] == train[0]["conn"][3, 7]
    est = BASELINES["logistic"](TASK["binary"]).fit(fm.transform(train), y_train)
    assert np.argmax(np.abs(est.model_[-1].coef_[0])) == fm.feature_names.index("conn:e3_7")
    assert roc_auc_score(y_test, est.decision(fm.transform(test))[:, 0]) >= 0.9


def test_missing_modality_is_a_nan_block_and_tabular_gaps_are_nan(data):
    fm = data["fm"]
    items, _ = make_items(30, seed=2)
    X = fm.transform(items)
    assert X.shape == (30, fm.n_features) == (30, len(fm.feature_names))
    for name, cols in fm.blocks.items():
        has = np.array([name in it for it in items])
        assert np.isnan(X[~has, cols]).all()
        if name != "clinical":  # tabular keeps NaN where a value was flagged missing
            assert np.isfinite(X[has, cols]).all()
    clinical = X[:, fm.blocks["clinical"]]
    present = np.array(["clinical" in it for it in items])
    assert fm.feature_names[fm.blocks["clinical"]] == [
        "clinical:x0", "clinical:x1", "clinical:x2", "clinical:x0_missing", "clinical:x1_missing", "clinical:x2_missing"
    ]
    np.testing.assert_array_equal(np.isnan(clinical[present, :3]), clinical[present, 3:] > 0.5)


def test_feature_map_state_round_trips_through_json(data):
    fm = data["fm"]
    items, _ = make_items(10, seed=4)
    restored = FeatureMap.from_state(json.loads(json.dumps(fm.state())))
    assert restored.feature_names == fm.feature_names and restored.modalities == list(KINDS)
    np.testing.assert_array_equal(restored.transform(items), fm.transform(items))


def test_volume_regional_means():
    vol = np.random.default_rng(0).normal(size=(1, 12, 12, 12))
    fm = FeatureMap.fit([{"t1": vol}], {"t1": "volume"})
    x = fm.transform([{"t1": vol}])
    assert x.shape == (1, 64) and fm.feature_names[:2] == ["t1:r0", "t1:r1"]
    assert x[0, 0] == pytest.approx(vol[0, :3, :3, :3].mean())
    assert x[0, 63] == pytest.approx(vol[0, 9:, 9:, 9:].mean())


def test_surface_parcel_means_on_fsaverage5():
    surf = np.ones((20484, 2))
    surf[:, 1] = 3.0
    surf[::7, 0] = np.nan  # NaN vertices are skipped, not propagated
    fm = FeatureMap.fit([{"thick": surf}], {"thick": "surface"}, surface_level=2)
    x = fm.transform([{"thick": surf}, {}])
    assert x.shape == (2, 324 * 2) and fm.feature_names[1] == "thick:r0_f1"
    np.testing.assert_allclose(x[0], np.tile([1.0, 3.0], 324))
    assert np.isnan(x[1]).all()
    with pytest.raises(ValueError, match="vertices"):
        FeatureMap.fit([{"thick": surf[:100]}], {"thick": "surface"})


def test_a_modality_no_training_sample_has_is_left_out_and_read_as_missing():
    """An inner fold of self-configuration can lack the one subject who has a modality: nothing to learn."""
    fm = FeatureMap.fit([{"a": np.arange(4.0)}, {"a": np.ones(4)}], {"a": "tabular", "b": "graph"})
    assert fm.modalities == ["a"]
    X = fm.transform([{"a": np.zeros(4), "b": np.ones((3, 3))}, {"b": np.ones((3, 3))}])
    assert X.shape == (2, fm.n_features) and np.isfinite(X[0]).all() and np.isnan(X[1]).all()
    with pytest.raises(ValueError, match="no training sample"):  # one extractor alone still refuses
        EXTRACTORS["graph"]("b").fit([])


def test_logistic_on_more_features_than_subjects_fits_in_the_row_space_with_the_same_answer() -> None:
    """The exact p >> n change of coordinates changes the cost, not the decision function."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import Pipeline

    from fusemed.models.baselines.estimators.common import impute_and_scale, n_folds

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 400))
    y = (X[:, 3] + 0.5 * rng.normal(size=30) > 0).astype(int)
    est = BASELINES["logistic"](task=TaskInfo("binary"), seed=0).fit(X, y)
    assert "row_space" in est.model_.named_steps
    cv = StratifiedKFold(n_splits=n_folds(y), shuffle=True, random_state=0)
    plain = Pipeline([*impute_and_scale(), ("model", LogisticRegressionCV(
        Cs=list(np.logspace(-3, 2, 6)), cv=cv, scoring="neg_log_loss", max_iter=2000))]).fit(X, y)
    X_new = rng.normal(size=(10, 400))
    p_plain = plain.predict_proba(X_new)[:, 1]
    p_rotated = 1 / (1 + np.exp(-est.decision(X_new)[:, 0]))
    assert float(np.ravel(plain[-1].C_)[0]) == est.extra_["C"]
    np.testing.assert_allclose(p_rotated, p_plain, atol=2e-3)
