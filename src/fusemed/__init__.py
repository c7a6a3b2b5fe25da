"""fusemed: deep diagnosis and prognosis models on multimodality medical imaging.

Volumes, graphs, cortical surfaces and clinical tables, each through its own encoder, fused by
interchangeable strategies that accept any subset of missing modalities, with calibrated uncertainty.
"""

from __future__ import annotations

__version__ = "0.1.0"
