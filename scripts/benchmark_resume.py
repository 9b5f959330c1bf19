"""Cost of exact resume on a training epoch of configs/smoke.yaml: today's loading against the
resumable one with step checkpoints.

- before:    the training loading as it was before exact resume: a plain ``DataLoader`` over a
             ``DistributedSampler`` of video indices (augmentation from each worker's global
             generator), no per-batch reseeding, no non-finite step check, no ``Preemption``
             callback, no step checkpoints (:func:`use_the_old_way`, kept here so that the
             comparison stays reproducible).
- resumable: the package as it is: ``StatefulDataLoader`` over ``ResumableSampler`` (a seed per
             sample, its state in every checkpoint), the per-batch reseeding and the non-finite
             step check of ``VideoClassifier``, ``Preemption``, and a step checkpoint every
             ``--checkpoint-every`` steps (``last.ckpt`` with the loader state; the K400
             configs write one every 30 minutes).

Each run is a fresh process running ``--epochs`` epochs of the smoke config without validation
(the first ``--skip-first`` of them, which pay the workers' start and a cold file cache, untimed);
the variants alternate (order reversed every other round), ``--repeats`` times. A callback times
each training epoch (first batch fetched to last step done, step checkpoints included; the
epoch-end checkpoint, the same in both, is outside). The table gives the median epoch time over
every epoch of every run with min-max, the seconds spent writing step checkpoints, and the ratio
to ``before``. Measure on a quiet machine: other processes on the cores move these figures more
than the difference being measured.

    python scripts/benchmark_resume.py                # 5 rounds of 3 epochs, the last 2 of each timed
    python scripts/benchmark_resume.py --repeats 1 --epochs 2 --train-per-class 20   # quick check
    python scripts/benchmark_resume.py --docs docs/benchmarks   # the table and plot of the docs
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml
from docs_output import DocsResults, bar_figure

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "smoke.yaml"
VARIANTS = ("before", "resumable")


def use_the_old_way(cli: Any) -> None:
    """Give the built trainer, model and data module the training loop they had before exact
    resume (see the module docstring)."""
    from torch.utils.data import DataLoader, DistributedSampler

    from videoswinv2.data.datasets import collate_clips
    from videoswinv2.training import NonFiniteSteps, Preemption

    data, model, trainer = cli.datamodule, cli.model, cli.trainer

    def train_dataloader() -> DataLoader:
        dataset = data._dataset("train")
        rank, world = data._rank_and_world()
        sampler = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=data.hparams.seed
        )
        workers = data.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=data.hparams.batch_size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=collate_clips,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
        )

    data.train_dataloader = train_dataloader
    for hook in ("on_train_batch_start", "on_before_optimizer_step", "lr_scheduler_step"):
        setattr(model, hook, types.MethodType(getattr(pl.LightningModule, hook), model))
    trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, (Preemption, NonFiniteSteps))]


class EpochTimer(pl.Callback):
    """Wall time of each training epoch, and of the checkpoints written during it."""

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.checkpoints: list[float] = []
        self._start = 0.0
        self._saving = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        save = trainer.save_checkpoint

        def timed_save(*args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            save(*args, **kwargs)
            self._saving += time.perf_counter() - start

        trainer.save_checkpoint = timed_save

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._saving = time.perf_counter(), 0.0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs.append(time.perf_counter() - self._start)
        self.checkpoints.append(self._saving)


def child(args: argparse.Namespace) -> None:
    from videoswinv2.cli import VideoSwinCLI

    sys.argv = sys.argv[:1]  # the CLI reads the arguments below, not this script's
    step_checkpoints = [
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.filename=last",
        "--trainer.callbacks.enable_version_counter=false",
        f"--trainer.callbacks.every_n_train_steps={args.checkpoint_every}",
    ]
    cli = VideoSwinCLI(
        args=[
            "-c",
            str(CONFIG),
            f"--data.init_args.data_root={args.data_root}",
            f"--data.init_args.synthetic.train_per_class={args.train_per_class}",
            f"--trainer.max_epochs={args.epochs}",
            "--trainer.limit_val_batches=0",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.logger.init_args.save_dir={args.out_dir}",
            f"--trainer.default_root_dir={args.out_dir}",
            *(step_checkpoints if args.run == "resumable" else []),
        ],
        run=False,
    )
    if args.run == "before":
        use_the_old_way(cli)
    timer = EpochTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    Path(args.out).write_text(json.dumps({"epochs": timer.epochs, "checkpoints": timer.checkpoints}))


def prepare_data(root: Path, train_per_class: int) -> None:
    from videoswinv2.data import SyntheticSpec, make_synthetic_dataset

    if (root / "classes.txt").is_file():
        return
    spec = yaml.safe_load(CONFIG.read_text())["data"]["init_args"]["synthetic"]
    make_synthetic_dataset(root, SyntheticSpec(**{**spec, "train_per_class": train_per_class}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each runs every variant once")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument(
        "--skip-first", type=int, default=1, help="epochs of each run left out of the figures (warm-up)"
    )
    parser.add_argument("--train-per-class", type=int, default=64, help="training videos per class")
    parser.add_argument(
        "--checkpoint-every", type=int, default=8, help="steps between step checkpoints (resumable)"
    )
    parser.add_argument("--data-root", type=Path, help="the synthetic data (default: a temporary folder)")
    parser.add_argument(
        "--docs", type=Path, metavar="FOLDER", help="also write the table and a plot there (docs/benchmarks)"
    )
    parser.add_argument("--run", choices=VARIANTS, help=argparse.SUPPRESS)  # one run, in a child
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.data_root = args.data_root or Path(tmp) / "data"
        prepare_data(args.data_root, args.train_per_class)
        results: dict[str, dict[str, list[float]]] = {v: {"epochs": [], "checkpoints": []} for v in VARIANTS}
        for round_ in range(args.repeats):
            for variant in VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]:
                out, run_dir = Path(tmp) / f"{variant}{round_}.json", Path(tmp) / f"runs_{variant}{round_}"
                command = [
                    sys.executable,
                    __file__,
                    "--run",
                    variant,
                    "--out",
                    str(out),
                    "--out-dir",
                    str(run_dir),
                ]
                command += ["--epochs", str(args.epochs), "--train-per-class", str(args.train_per_class)]
                command += ["--checkpoint-every", str(args.checkpoint_every)]
                subprocess.run([*command, "--data-root", str(args.data_root)], check=True, cwd=REPO)
                run = json.loads(out.read_text())
                for key in run:
                    results[variant][key] += run[key][args.skip_first :]
                print(
                    f"round {round_ + 1} {variant}: epochs {', '.join(f'{t:.2f}' for t in run['epochs'])} s"
                )
    report(results, args)


def report(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    """Print the table; with ``--docs``, also write it and a plot into the documentation."""
    reference = statistics.median(results["before"]["epochs"])
    setting = (
        f"smoke config, {args.train_per_class} training videos per class, {args.repeats} runs of "
        f"{args.epochs} epochs, the first {args.skip_first} of each left out"
    )
    header = ["variant", "epoch s, median (min-max)", "step checkpoints s per epoch", "vs before"]
    rows = []
    for variant in VARIANTS:
        epochs, saving = results[variant]["epochs"], results[variant]["checkpoints"]
        median = statistics.median(epochs)
        rows.append(
            [
                variant,
                f"{median:.2f} ({min(epochs):.2f}-{max(epochs):.2f})",
                f"{statistics.median(saving):.3f}",
                f"{median / reference:.3f}x",
            ]
        )
    print(f"\n{setting}")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.docs:
        docs = DocsResults("resume")
        docs.text(setting + ":")
        docs.table(header, rows)
        medians = [statistics.median(results[v]["epochs"]) for v in VARIANTS]
        docs.figure(
            bar_figure(
                list(VARIANTS),
                medians,
                low=[min(results[v]["epochs"]) for v in VARIANTS],
                high=[max(results[v]["epochs"]) for v in VARIANTS],
                ylabel="seconds per training epoch (median, min-max)",
                title="smoke config: loading before exact resume vs resumable with step checkpoints",
            ),
            "epoch time before exact resume and with it",
        )
        docs.write(args.docs)


if __name__ == "__main__":
    main()
