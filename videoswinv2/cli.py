"""Command line: LightningCLI (``fit / validate / test / predict``) plus videoswinv2's own tools.

``videoswinv2 fit -c configs/k400_base.yaml``        train (also ``lightning ...``, ``python -m videoswinv2 ...``)
``videoswinv2 test -c CONFIG --ckpt_path CKPT``       multi-view evaluation
``videoswinv2 inflate SRC DST --model NAME``          2D SwinV2 checkpoint -> 3D state dict
``videoswinv2 make-synthetic OUT``                    a small motion dataset in the Kinetics layout
``videoswinv2 predict INPUT ... --ckpt CKPT``         top-k labels of videos (files, folders, lists)
``videoswinv2 extract-features INPUT ... --ckpt CKPT --output DIR``  backbone features as .npy

Under ``videoswinv2``, ``predict`` is the video predictor above; LightningCLI's own ``predict``
stays available as ``lightning predict``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lightning.pytorch.cli import LightningCLI


class VideoSwinCLI(LightningCLI):
    """LightningCLI in subclass mode: ``model: class_path:`` and ``data: class_path:`` in YAML
    pick the classes. A re-run in the same log directory overwrites its saved config."""

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        import lightning.pytorch as pl

        import videoswinv2.data  # noqa: F401  (registers the classes for short class_path names)
        import videoswinv2.training  # noqa: F401

        super().__init__(
            # Any LightningModule / LightningDataModule, picked by class_path (subclass mode).
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            # KineticsDataModule shards every split itself so that evaluation sees each video once.
            trainer_defaults={"use_distributed_sampler": False},
            args=args,
            run=run,
        )

    def before_instantiate_classes(self) -> None:
        # Checked here so the message is the last line, not buried in jsonargparse's union error.
        config = self.config[self.subcommand] if self.subcommand else self.config
        path = config.get("model.init_args.pretrained_2d")
        if path is not None and not Path(path).exists():
            self.parser.error(
                f"the 2D checkpoint {path} does not exist: download it (see README) and set "
                "--model.init_args.pretrained_2d to its path, or to null to train from scratch"
            )


def _tools() -> dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], object]]
]:
    from videoswinv2.checkpoints import add_inflate_arguments, run_inflate
    from videoswinv2.commands import (
        add_extract_features_arguments,
        add_predict_arguments,
        run_extract_features,
        run_predict,
    )
    from videoswinv2.data import add_make_synthetic_arguments, run_make_synthetic

    return {
        "inflate": ("turn a 2D SwinV2 checkpoint into a 3D state dict", add_inflate_arguments, run_inflate),
        "make-synthetic": (
            "write a synthetic motion dataset in the Kinetics layout",
            add_make_synthetic_arguments,
            run_make_synthetic,
        ),
        "predict": ("top-k classes of videos, to the terminal or a file", add_predict_arguments, run_predict),
        "extract-features": (
            "backbone features of videos as .npy files",
            add_extract_features_arguments,
            run_extract_features,
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """The ``videoswinv2`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    tools = _tools()
    if argv and argv[0] in tools:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        description, add_arguments, run = tools[argv[0]]
        parser = argparse.ArgumentParser(prog=f"videoswinv2 {argv[0]}", description=description)
        add_arguments(parser)
        result = run(parser.parse_args(argv[1:]))
        return result if isinstance(result, int) else 0
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
    VideoSwinCLI(args=argv)
    return 0


def lightning_main() -> int:
    """The ``lightning`` command: LightningCLI alone."""
    VideoSwinCLI()
    return 0


if __name__ == "__main__":
    sys.exit(main())
