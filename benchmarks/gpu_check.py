"""GPU check (run on a CUDA machine): every fusion gives the CPU's answer on CUDA, a missing modality
still has no influence there, and `fusemed train --accelerator gpu` trains and predicts end to end.

Usage::

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.md [--subjects 60]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_models_fusion_contract import MODALITIES, PATTERNS, TASKS, make_batch, with_noise_in_missing  # noqa: E402

from fusemed.models import FUSIONS, ModelConfig, build_model  # noqa: E402


def parity(fusion: str) -> dict:
    """Max |CPU - CUDA| of eval outputs, and of CUDA outputs with noise in the missing slots."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(fusion=fusion, embed_dim=16), MODALITIES, TASKS["binary"]).eval()
    inputs = make_batch(PATTERNS)
    with torch.no_grad():
        cpu = model(inputs, PATTERNS)
        gpu_model = model.cuda()
        cuda_in = {k: v.cuda() for k, v in inputs.items()}
        gpu = gpu_model(cuda_in, PATTERNS.cuda())
        noisy = {k: v.cuda() for k, v in with_noise_in_missing(inputs, PATTERNS, "noise").items()}
        gpu_noisy = gpu_model(noisy, PATTERNS.cuda())
    return {
        "fusion": fusion,
        "cpu_vs_cuda": float((cpu - gpu.cpu()).abs().max()),
        "missing_noise_effect": float((gpu - gpu_noisy).abs().max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gpu_check.md")
    ap.add_argument("--subjects", type=int, default=60)
    ap.add_argument("--work", default="/tmp/gpu_check")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "no CUDA device"
    lines = [
        f"# GPU check\n\nMachine: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
        f"Python {platform.python_version()}.\n",
        "| fusion | max abs CPU vs CUDA | effect of noise in missing slots |",
        "|---|---|---|",
    ]
    for fusion in FUSIONS:
        r = parity(fusion)
        lines.append(f"| {fusion} | {r['cpu_vs_cuda']:.2e} | {r['missing_noise_effect']:.2e} |")
    work = Path(args.work)
    fm = [sys.executable, "-m", "fusemed"]
    t0 = time.perf_counter()
    subprocess.run(
        fm
        + [
            "simulate",
            "coma",
            "--subjects",
            str(args.subjects),
            "--out",
            str(work / "cohort"),
            "--seed",
            "0",
            "--spacing",
            "4",
            "--missing",
            "0.3",
        ],
        check=True,
    )
    t_sim = time.perf_counter() - t0
    rows = []
    for acc in ("gpu", "cpu"):
        t0 = time.perf_counter()
        subprocess.run(
            fm
            + [
                "train",
                "--cohort",
                str(work / "cohort"),
                "--target",
                "outcome",
                "--fusion",
                "attention",
                "--out",
                str(work / f"run-{acc}"),
                "--folds",
                "3",
                "--epochs",
                "8",
                "--accelerator",
                acc,
                "--uncertainty",
                "mc_dropout",
                "--calibrate",
            ],
            check=True,
        )
        t_train = time.perf_counter() - t0
        subprocess.run(
            fm
            + [
                "predict",
                str(work / f"run-{acc}"),
                "--cohort",
                str(work / "cohort"),
                "--out",
                str(work / f"pred-{acc}.csv"),
            ],
            check=True,
        )
        metrics = json.loads((work / f"run-{acc}" / "metrics.json").read_text())
        rows.append(
            f"| {acc} | {t_train:.1f} | {metrics.get('auroc', float('nan')):.3f} | "
            f"{metrics.get('coverage', float('nan'))} |"
        )
    lines += [
        "",
        f"Simulated coma cohort: {args.subjects} subjects at 4 mm, 30 % missing ({t_sim:.0f} s). "
        "`fusemed train --fusion attention --folds 3 --epochs 8 --uncertainty mc_dropout --calibrate`, "
        "then `fusemed predict`:",
        "",
        "| accelerator | train s | AUROC | coverage |",
        "|---|---|---|---|",
        *rows,
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
