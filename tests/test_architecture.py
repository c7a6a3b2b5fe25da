"""Dependency rules a refactor must not break: training uses uncertainty, never the other way round, and
training code holds no uncertainty method name (methods are plug-ins)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fusemed"


def _imports(package: str) -> dict[str, set[str]]:
    """``{module file: fusemed modules it imports}`` (top-level and function-level imports alike)."""
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fusemed"):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names if a.name.startswith("fusemed"))
        found[path.relative_to(SRC).as_posix()] = names
    return found


@pytest.mark.parametrize("package, forbidden", [("uncertainty", "fusemed.training"),
                                                ("uncertainty", "fusemed.configure"),
                                                ("evaluation", "fusemed.training")])
def test_no_import_back_into_training(package: str, forbidden: str) -> None:
    offenders = {f: sorted(m for m in mods if m.startswith(forbidden)) for f, mods in _imports(package).items()}
    assert not {f: m for f, m in offenders.items() if m}, f"{package} must not import {forbidden}"


def test_training_code_holds_no_uncertainty_method_name() -> None:
    from fusemed.uncertainty import METHODS

    for path in [*(SRC / "training").rglob("*.py"), *(SRC / "configure").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        named = sorted(strings & (set(METHODS) - {"none"}))
        assert not named, f"{path.relative_to(SRC)} branches on uncertainty methods {named}"
        assert "uncertainty ==" not in path.read_text()


def test_the_pipeline_uses_the_exported_wrappers(monkeypatch) -> None:
    """MC dropout at prediction is the exported MCDropout, not a second copy in the training code."""
    import torch
    from torch import nn

    import fusemed.uncertainty.mc_dropout as mc_dropout
    from fusemed.uncertainty import UncertaintyConfig

    calls = []
    real = mc_dropout.MCDropout

    class Spy(real):  # type: ignore[misc, valid-type]
        def __call__(self, *args, **kwargs):
            calls.append(self.n_samples)
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(mc_dropout, "MCDropout", Spy)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop, self.lin = nn.Dropout(0.5), nn.Linear(3, 1)

        def forward(self, inputs, present):
            return self.lin(self.drop(inputs["x"]))

    forward = UncertaintyConfig(method="mc_dropout", mc_samples=4).build().forward([Net()], seed=0)
    out = forward({"x": torch.ones(2, 3)}, torch.ones(2, 1, dtype=torch.bool))
    assert calls == [4] and out.shape == (4, 2, 1) and out.std(0).sum() > 0


def test_networks_train_only_in_the_shared_training_module() -> None:
    """Every network (prognosis models, lesion detectors) trains through ``fusemed.training.fit`` on
    Lightning: no hand-written optimisation loop anywhere in the package."""
    import re

    loop = re.compile(r"\.backward\(\)|optimizer\.step|opt\.step\(")
    found = [f"{path.relative_to(SRC)}:{n}" for path in sorted(SRC.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if loop.search(line)]
    assert not found, f"hand-written training loops outside fusemed.training.fit: {found}"
