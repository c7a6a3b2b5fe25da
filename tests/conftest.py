from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)


@pytest.fixture
def cohort_dir(tmp_path: Path) -> Path:
    from cohort_factory import make_cohort

    return make_cohort(tmp_path / "cohort")
