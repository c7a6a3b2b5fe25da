"""Speed of the models alone (no data loading): one training step and per-subject inference latency for
every fusion strategy, on coma-like inputs at 3 mm (T1 + PET 61x73x61, a 100-region connectome, an
fsaverage5 cortical-thickness map, 6 clinical values), 30 % of each non-clinical modality missing.

    PYTHONPATH=src python benchmarks/bench_models.py [--batch 8] [--threads 2] [--repeats 5]

Prints a markdown table; not a test (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from fusemed.models import FUSIONS, ModalityInfo, ModelConfig, TaskInfo, build_model

MODALITIES = [
    ModalityInfo("t1", "volume", (1, 61, 73, 61)),
    ModalityInfo("pet", "volume", (1, 61, 73, 61)),
    ModalityInfo("connectome", "graph", (100, 100)),
    ModalityInfo("cortex", "surface", (20484, 1)),
    ModalityInfo("clinical", "tabular", (12,)),
]


def make_batch(n: int, generator: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    present = torch.rand(n, len(MODALITIES), generator=generator) > 0.3
    present[:, -1] = True  # clinical values always there
    inputs = {m.name: torch.randn(n, *m.shape, generator=generator) for m in MODALITIES}
    return inputs, present


def bench(fusion: str, batch: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(fusion=fusion), MODALITIES, TaskInfo("binary"))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    inputs, present = make_batch(batch, g)
    target = torch.randint(0, 2, (batch,), generator=g)

    def step() -> None:
        optimiser.zero_grad()
        model.loss(model(inputs, present), target).backward()
        optimiser.step()

    model.train()
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    train_s = (time.perf_counter() - start) / repeats
    model.eval()
    one, one_present = {k: v[:1] for k, v in inputs.items()}, torch.ones(1, len(MODALITIES), dtype=torch.bool)
    with torch.no_grad():
        model(one, one_present)
        start = time.perf_counter()
        for _ in range(repeats):
            model(one, one_present)
        infer_s = (time.perf_counter() - start) / repeats
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "train_subjects_per_s": batch / train_s,
        "infer_ms": 1000 * infer_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [(name, bench(name, args.batch, args.repeats)) for name in sorted(FUSIONS)]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"batch {args.batch}, {args.threads} threads, torch {torch.__version__}, peak RSS {peak_mib:.0f} MiB\n")
    print("| fusion | parameters | training (subjects/s) | inference, 1 subject, all modalities (ms) |")
    print("|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['params']:,} | {r['train_subjects_per_s']:.1f} | {r['infer_ms']:.0f} |")


if __name__ == "__main__":
    main()
