"""Training throughput and inference latency per fusion strategy: our stack vs a plain PyTorch loop.

On a simulated coma cohort at 3 mm (30 % of each modality missing), for every registered fusion
strategy, in a fresh subprocess each (so peak RSS is per strategy):

- preprocessing: fit on the training split (grid + intensity stats), then each subject read and
  preprocessed once (cached, as training does);
- ours: ``fusemed.training.runner.fit_member`` — the Lightning module/data module with early stopping,
  checkpoints, CSV logging, deterministic mode — for E epochs (train + validation pass each);
- plain: the same model (same seed, same cached dataset and loaders) trained by a hand-written loop
  (AdamW, forward/loss/backward/step, a validation pass per epoch, no checkpoints);
- inference: one subject at a time, end-to-end from disk (read + resample + normalise + forward), and
  model only (preprocessed tensors).

Usage::

    PYTHONPATH=src python benchmarks/train_speed.py [--cohort DIR | --n 40] [--epochs 3] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def worker(cohort_dir: str, fusion: str, epochs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    import lightning as L

    from fusemed.cohort import Cohort
    from fusemed.training import TrainConfig
    from fusemed.training.data import CaseDataset, Collate, FoldDataModule, Task, loader
    from fusemed.training.inference import predict_logits
    from fusemed.training.module import Slot, build_model
    from fusemed.training.preprocessing import Preprocessing
    from fusemed.training.runner import fit_member
    from fusemed.training.splits import make_folds

    cohort = Cohort.load(cohort_dir)
    task = Task.from_cohort(cohort, "outcome")
    cases = [c for c in cohort if "outcome" in c.targets]
    split = make_folds([c.subject for c in cases], [task.strata(c) for c in cases], [c.site for c in cases],
                       5, 0)[0]
    mods = list(cohort.modality_names)
    config = TrainConfig(cohort=cohort_dir, target="outcome", fusion=fusion, epochs=epochs, batch_size=8,
                         patience=epochs + 1, progress=False)
    t0 = time.perf_counter()
    prep = Preprocessing.fit(cohort, split.train, mods, config.spacing)
    t_fit = time.perf_counter() - t0
    shapes = prep.shapes()
    slots = [Slot(m, cohort.spec.modalities[m].kind.value, shapes[m], cohort.spec.modalities[m].mesh) for m in mods]
    collate = Collate(mods, shapes)
    train = CaseDataset([cohort[s] for s in split.train], mods, prep, task)
    val = CaseDataset([cohort[s] for s in split.val], mods, prep, task)
    t0 = time.perf_counter()
    for ds in (train, val):
        for i in range(len(ds)):
            ds[i]
    t_pre = (time.perf_counter() - t0) / (len(train) + len(val))

    def fresh_model() -> torch.nn.Module:
        L.seed_everything(0, verbose=False)
        return build_model(config, slots, task)

    # plain loop
    model = fresh_model()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    data = FoldDataModule(train, val, collate, config.batch_size, 0, 0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in data.train_dataloader():
            opt.zero_grad()
            loss = model.loss(model(batch["inputs"], batch["present"]), batch["target"])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for batch in data.val_dataloader():
                model.loss(model(batch["inputs"], batch["present"]), batch["target"])
    t_plain = time.perf_counter() - t0
    n_seen = epochs * (len(train) // config.batch_size * config.batch_size if len(train) > config.batch_size
                       else len(train))

    # our stack (the function train_run calls per fold)
    with tempfile.TemporaryDirectory() as tmp:
        model = fresh_model()
        meta = {"modalities": mods, "slots": [], "task": {}}
        t0 = time.perf_counter()
        fit_member(config, model, FoldDataModule(train, val, collate, config.batch_size, 0, 0), Path(tmp),
                   0, meta)
        t_ours = time.perf_counter() - t0

    # inference, one subject at a time
    test_cases = [cohort[s] for s in split.test]
    cold = CaseDataset(test_cases, mods, prep, task, cache=False)
    t0 = time.perf_counter()
    predict_logits(model, cold, collate, batch_size=1)
    t_e2e = (time.perf_counter() - t0) / len(test_cases)
    warm = CaseDataset(test_cases, mods, prep, task)
    for i in range(len(warm)):
        warm[i]
    batches = list(loader(warm, collate, 1))
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in batches:
            model(b["inputs"], b["present"])
    t_model = (time.perf_counter() - t0) / len(test_cases)
    return {"fusion": fusion, "n_train": len(train), "n_val": len(val), "n_test": len(test_cases),
            "grid": list(shapes[mods[0]]), "prep_fit_s": t_fit, "prep_per_subject_s": t_pre,
            "plain_subjects_per_s": n_seen / t_plain, "ours_subjects_per_s": n_seen / t_ours,
            "overhead": t_ours / t_plain, "infer_e2e_s": t_e2e, "infer_model_s": t_model,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "params": sum(p.numel() for p in model.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", help="existing coma cohort (default: simulate one)")
    ap.add_argument("--n", type=int, default=40, help="subjects to simulate")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fusions", default="all")
    ap.add_argument("--out", default="benchmarks/train_speed.md")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.cohort, args.worker, args.epochs, args.threads)), flush=True)
        return
    from fusemed.models import FUSIONS

    tmp = tempfile.mkdtemp(prefix="fusemed-bench-")
    cohort = args.cohort
    if cohort is None:
        from fusemed.simulate import simulate_cohort

        t0 = time.perf_counter()
        cohort = str(simulate_cohort("coma", Path(tmp) / "coma", n_subjects=args.n, seed=0, spacing=3.0,
                                     missing=0.3))
        print(f"simulated {args.n} coma subjects in {time.perf_counter() - t0:.0f} s", flush=True)
    fusions = sorted(FUSIONS) if args.fusions == "all" else args.fusions.split(",")
    rows = []
    for fusion in fusions:
        cmd = [sys.executable, __file__, "--worker", fusion, "--cohort", cohort, "--epochs", str(args.epochs),
               "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not line:
            print(proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"worker {fusion} failed")
        rows.append(json.loads(line[0][7:]))
        print(rows[-1], flush=True)
    write_md(Path(args.out), rows, args)


def write_md(path: Path, rows: list[dict], args: argparse.Namespace) -> None:
    r0 = rows[0]
    lines = [
        "# Training speed: fusemed stack vs a plain PyTorch loop",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/train_speed.py --n {args.n} --epochs {args.epochs} "
        f"--threads {args.threads}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs), "
        f"torch {torch.__version__}, {args.threads} thread(s), CPU only.  ",
        f"Cohort: simulated coma, {args.n} subjects, 3 mm, 30 % of each modality missing (MCAR); "
        f"fold 0 of 5: {r0['n_train']} train / {r0['n_val']} val / {r0['n_test']} test subjects; "
        f"volume grid {r0['grid']}; default `ModelConfig`; batch 8; {args.epochs} epochs.",
        "",
        "Throughput = training subjects per second of wall time over the whole fit (each epoch's "
        "validation pass included in both). Overhead = our time / plain time (target <= 1.2). "
        "Inference: one subject at a time, end-to-end from disk (read, resample, normalise, forward) and "
        "model only. Peak RSS of the subprocess that ran the strategy.",
        "",
        "| fusion | params | plain (subj/s) | ours (subj/s) | overhead | inference e2e (s/subj) "
        "| inference model (s/subj) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['fusion']} | {r['params']:,} | {r['plain_subjects_per_s']:.2f} | "
                     f"{r['ours_subjects_per_s']:.2f} | {r['overhead']:.2f}x | {r['infer_e2e_s']:.3f} | "
                     f"{r['infer_model_s']:.3f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", f"Preprocessing (fold 0): fit {r0['prep_fit_s']:.1f} s on {r0['n_train']} subjects; "
              f"{r0['prep_per_subject_s']:.3f} s per subject to read and preprocess all its modalities.", ""]
    path.write_text("\n".join(lines))
    print(path.read_text())


if __name__ == "__main__":
    main()
