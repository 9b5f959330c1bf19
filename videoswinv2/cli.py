"""Command line: LightningCLI (``fit / validate / test``) plus videoswinv2's own tools.

Under ``videoswinv2``, ``predict`` is the video predictor; LightningCLI's own ``predict`` stays
available as ``lightning predict``. Every tool's code is in ``videoswinv2.commands``.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import logging
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from videoswinv2.cli_errors import concise_error, first_line, named_options
from videoswinv2.commands.run_folders import (
    continue_last_run,
    evaluated_run,
    remove_failed_run,
    runs_in,
    unreadable_checkpoint,
)
from videoswinv2.errors import UsageError, WorkFailed

Tool = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], object]]

# LightningCLI's subcommands under `videoswinv2`, with the line `videoswinv2 --help` shows.
LIGHTNING_COMMANDS = {
    "fit": "train a model: videoswinv2 fit -c CONFIG",
    "validate": "score a checkpoint on the validation split: videoswinv2 validate -c CONFIG --ckpt_path CKPT",
    "test": "multi-view evaluation of a checkpoint: videoswinv2 test -c CONFIG --ckpt_path CKPT",
}

# Tools that skip what an earlier run finished, so that an interrupted run continues.
RESUMABLE_TOOLS = ("predict", "extract-features", "timeline", "prepare")


def _tools() -> dict[str, Tool]:
    """Each tool's description, options and run; its name is its module's, ``-`` for ``_``."""
    from videoswinv2.commands import (
        export,
        extract_features,
        inflate,
        make_synthetic,
        predict,
        prepare,
        timeline,
    )

    described = {
        inflate: "turn a 2D SwinV2 checkpoint into a 3D state dict",
        make_synthetic: "write a synthetic dataset: motion classes, or multi-label objects (--objects)",
        predict: "top-k classes of videos, to the terminal or a file",
        extract_features: "backbone features of videos as .npy files",
        timeline: "classes along whole videos: a row per window, merged segments and a picture",
        export: "a checkpoint as an ONNX or torch.export (.pt2) model",
        prepare: "re-encode a dataset folder for fast training (short side, keyframes, upright, no audio)",
    }
    return {
        module.__name__.rsplit(".", 1)[1].replace("_", "-"): (description, module.add_arguments, module.run)
        for module, description in described.items()
    }


class _ArgumentParser(LightningArgumentParser):
    """Lightning's parser; its errors end in one line naming the setting and the problem."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if self.exit_on_error:  # nested parsers report to their parent, which condenses once
            parser = getattr(ex, "subcommand_parser", None) or self
            message = concise_error(message, parser)
        super().error(message, ex)


def _quiet_warnings() -> None:
    """Drop the warnings the libraries' own calls raise, which no user can act on (every command)."""
    for pattern in (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's own use of torch's pytree
        r"The dirpath has changed from",  # resuming into a new version folder is the normal case
        r"Checkpoint directory .* exists and is not empty",  # so is continuing in the same one
        r"'set_vital' is deprecated",  # torchdata's StatefulDataLoader calls it
        # Metrics are torchmetrics objects computed over all ranks; Lightning cannot tell.
        r"It is recommended to use `self\.log\(.*sync_dist=True\)`",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def _quiet_lightning() -> None:
    """Drop Lightning's messages that say nothing about this run; show videoswinv2's own INFO lines."""
    _quiet_warnings()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in str(record.msg)
    )
    from lightning.pytorch.utilities import rank_zero_only

    package = logging.getLogger("videoswinv2")
    if not package.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        # Under DDP every rank runs this; informational lines come from rank 0 only.
        handler.addFilter(lambda record: record.levelno >= logging.WARNING or rank_zero_only.rank == 0)
        package.addHandler(handler)
        package.setLevel(logging.INFO)  # records still propagate: handlers on the root see them too


# The trainer's defaults and default callbacks, which the parser shows (`--print_config`).
TRAINER_DEFAULTS = Path(__file__).with_name("trainer_defaults.yaml")


class VideoSwinCLI(LightningCLI):
    """LightningCLI in subclass mode (``class_path:`` in YAML picks the model and data classes),
    and besides: the trainer's defaults, callbacks included, are :data:`TRAINER_DEFAULTS` (a
    config's own Preemption, NonFiniteSteps, BrokenVideoLogger, RunIdentity or TestReport replaces
    the default one); the model's ``num_classes`` (which a given value must agree with) and
    ``clip_geometry`` follow the data module; errors end in one line naming the setting; run
    folders follow ``videoswinv2.commands.run_folders``; a file or pipe gets the TQDM progress bar
    (Rich's draws nothing there); ``fit`` ends by printing where the checkpoints went.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, prog: str | None = None) -> None:
        import lightning.pytorch as pl

        import videoswinv2.data  # noqa: F401  (registers the classes for short class_path names)
        import videoswinv2.training  # noqa: F401

        _quiet_lightning()
        # What the config says of the model's class count (see _num_classes).
        self._model_has_num_classes = True
        self._given_num_classes: int | None = None
        self._given_multi_label: bool | None = None
        super().__init__(
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            parser_class=_ArgumentParser,
            parser_kwargs={"prog": prog} if prog else None,
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from videoswinv2.data.geometry import ClipGeometry

        # Set here rather than through `trainer_defaults`, which would make the callbacks permanent
        # and leave them out of --print_config.
        defaults = yaml.safe_load(TRAINER_DEFAULTS.read_text(encoding="utf-8"))["trainer"]
        parser.set_defaults({f"trainer.{key}": value for key, value in defaults.items()})
        # Applied when the data module exists: its class list may come from its files.
        parser.link_arguments(
            "data", "model.init_args.num_classes", compute_fn=self._num_classes, apply_on="instantiate"
        )
        parser.link_arguments(
            "data", "model.init_args.multi_label", compute_fn=self._multi_label, apply_on="instantiate"
        )
        parser.link_arguments(
            "data", "model.init_args.clip_geometry", compute_fn=ClipGeometry.of, apply_on="instantiate"
        )

    def _num_classes(self, data: Any) -> int | None:
        """The data's class count, which a given ``num_classes`` must equal."""
        given = self._given_num_classes
        if not self._model_has_num_classes:  # e.g. a pretraining module: nothing to link, nothing to read
            return given
        count = getattr(data, "num_classes", None)
        if count is None:
            return given
        if given is not None and given != count:
            raise ValueError(
                f"--model.init_args.num_classes is {given} (from the config, the command line or the "
                f"--ckpt_path checkpoint) but the data has {count} classes: leave num_classes out to "
                "follow the data, or give data with those classes"
            )
        return count

    def _multi_label(self, data: Any) -> bool | None:
        """Multi-label when the data's annotation format is, or the config (or the ``--ckpt_path``
        checkpoint) says so: a single-label dataset may train independent sigmoids too."""
        if self._given_multi_label is None:  # e.g. a pretraining module: nothing to link
            return None
        return bool(self._given_multi_label) or bool(getattr(data, "multi_label", False))

    def _parse_ckpt_path(self) -> None:
        # Lightning reads the hyper-parameters of --ckpt_path here; a wrong file must not end in
        # a traceback from deep inside torch.load.
        config = self.config.get(self.config.get("subcommand") or "", {})
        path = config.get("ckpt_path") if config else None
        local = path and "://" not in path and path not in ("best", "last", "hpc", "registry")
        if local and not Path(path).is_file():
            self.parser.error(f"--ckpt_path {path}: no such file")
        try:
            super()._parse_ckpt_path()
        except Exception as err:
            if not local:
                raise
            self.parser.error(
                f"--ckpt_path {path} is not a checkpoint torch can read ({type(err).__name__}: {first_line(err)})"
            )

    def before_instantiate_classes(self) -> None:
        # Checked here so the message is the last line, not buried in jsonargparse's union error.
        config = self.config[self.subcommand] if self.subcommand else self.config
        self._model_has_num_classes = "num_classes" in (config.get("model.init_args") or {})
        self._given_num_classes = config.get("model.init_args.num_classes")
        init_args = config.get("model.init_args") or {}
        self._given_multi_label = init_args.get("multi_label") if "multi_label" in init_args else None
        # Only a fresh fit reads `pretrained`: a resumed one, test, validate and predict restore
        # the weights from their checkpoint.
        path = config.get("model.init_args.pretrained")
        resuming = config.get("ckpt_path") is not None
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":
            resuming = self._continue_last_run(config)
        fresh_fit = self.subcommand == "fit" and not resuming
        if fresh_fit and path is not None and not Path(path).exists():
            self.parser.error(
                f"the pretrained checkpoint {path} does not exist: download it (see docs/workflows/start-from-2d-weights.md) and set "
                "--model.init_args.pretrained to its path, or to null to train from scratch"
            )
        self._log_into_evaluated_run(config)

    def _continue_last_run(self, config: Any) -> bool:
        """``fit --ckpt_path last``: whether there is a run to continue (see ``continue_last_run``)."""
        logger = config.get("trainer.logger")
        init_args = getattr(logger, "init_args", None)
        if init_args is None or "save_dir" not in init_args:
            return True  # Lightning looks for last.ckpt in the checkpoint folder it has
        root = Path(init_args.save_dir, init_args.get("name") or "")
        tensorboard = str(logger.class_path).endswith("TensorBoardLogger")
        run = continue_last_run(root, init_args.get("version"), reuses_folders=tensorboard)
        if run is None:
            return False
        init_args.version = run.version or init_args.get("version")
        config.ckpt_path = run.ckpt_path or config.ckpt_path
        version = init_args.version
        folder = root / (version if isinstance(version, str) else f"version_{version}")
        problem = unreadable_checkpoint(Path(run.ckpt_path or folder / "checkpoints" / "last.ckpt"))
        if problem:
            self.parser.error(problem)
        return True

    def _log_into_evaluated_run(self, config: Any) -> None:
        """``test`` / ``validate`` of a run's checkpoint log into it unless a version is set."""
        init_args = getattr(config.get("trainer.logger"), "init_args", None)
        run = evaluated_run(self.subcommand or "", config.get("ckpt_path"))
        unversioned = init_args is not None and "save_dir" in init_args and init_args.get("version") is None
        if run is not None and unversioned:
            init_args.save_dir, init_args.name, init_args.version = str(run[0]), "", run[1]

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as err:
            self.parser.error(self._describe_build_error(err))

    def _describe_build_error(self, err: Exception) -> str:
        """A class's ``__init__`` failed: name the section, the options the message mentions, and
        the message (jsonargparse wraps it in a union-type report whose last line is the config)."""
        cause = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        reason = first_line(cause)
        reason = reason if isinstance(cause, ValueError) else f"{type(cause).__name__}: {reason}"
        if getattr(self, "config_init", None) is not None:  # the classes were built; the Trainer failed
            return f"--trainer: {reason}"
        config = self.config[self.subcommand] if self.subcommand else self.config
        built = re.search(r"class_path='([^']+)'", str(err))
        for section in ("model", "data"):
            if built and config.get(f"{section}.class_path") == built.group(1):
                return f"{named_options(str(cause), section, config)}: {reason}"
        return reason

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

        from videoswinv2.data import BrokenVideoLogger, RunIdentity
        from videoswinv2.training import NonFiniteSteps, Preemption, TestReport

        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        # A run has one of each of these: a config's own (`callbacks+:`) replaces the default.
        unique = (Preemption, NonFiniteSteps, BrokenVideoLogger, RunIdentity, TestReport)
        last = {type(c): c for c in configured if type(c) in unique}
        kept = [c for c in configured if type(c) not in unique or last[type(c)] is c]
        wants_bar = config.get("enable_progress_bar", True) is not False
        if wants_bar and not sys.stderr.isatty():
            if not any(isinstance(c, ProgressBar) for c in [*configured, *callbacks]):
                callbacks = [*callbacks, TQDMProgressBar()]
        # Preemption ends the process once it has saved a step, so it comes after every callback
        # that acts on the step (the trainer puts the checkpoints after it).
        config["callbacks"] = [c for c in kept if not isinstance(c, Preemption)]
        callbacks = [*callbacks, *(c for c in kept if isinstance(c, Preemption))]
        return super()._instantiate_trainer(config, callbacks)

    def _run_subcommand(self, subcommand: str) -> None:
        before = runs_in(self._log_root())
        try:
            super()._run_subcommand(subcommand)
        except BaseException as err:
            self._remove_failed_run(before)
            if isinstance(err, UsageError):  # found once the run looked at its data: no traceback
                print(f"error: {first_line(err)}", file=sys.stderr)
                sys.exit(2)
            raise

    def _log_root(self) -> Path | None:
        """The folder that holds the logger's version folders (no version is resolved)."""
        logger = self.trainer.logger
        root = getattr(logger, "root_dir", None)
        return Path(root) if root and hasattr(logger, "version") else None

    def _remove_failed_run(self, before: set[Path]) -> None:
        """The version folder of a run that failed before writing a checkpoint goes."""
        root = self._log_root()
        logger = self.trainer.logger
        if root is not None and self.trainer.is_global_zero and getattr(logger, "_version", None) is not None:
            remove_failed_run(Path(logger.log_dir), root, before)

    def after_fit(self) -> None:
        if not self.trainer.is_global_zero:
            return
        lines = []
        for callback in self.trainer.checkpoint_callbacks:
            if not isinstance(callback, ModelCheckpoint):  # Preemption
                continue
            if callback.monitor and callback.best_model_path:
                score = callback.best_model_score
                lines.append(
                    f"best checkpoint ({callback.monitor} = {float(score):.4f}): {callback.best_model_path}"
                )
            elif callback.best_model_path:
                lines.append(f"latest checkpoint: {callback.best_model_path}")
        if self.trainer.logger is not None:
            lines.append(f"logs: {self.trainer.log_dir}")
        print("\n".join(dict.fromkeys(lines)))  # two callbacks may write the same last.ckpt


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment: the one at configuration time may since have
    been replaced (and closed), as by a caller capturing the output of several runs."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _main_help(tools: dict[str, Tool]) -> str:
    commands = {**LIGHTNING_COMMANDS, **{name: description for name, (description, *_) in tools.items()}}
    width = max(map(len, commands)) + 2
    rows = "\n".join(f"  {name:<{width}}{description}" for name, description in commands.items())
    return (
        "usage: videoswinv2 COMMAND [ARGS]\n\n"
        "3D Swin Transformer V2 for video action recognition.\n\ncommands:\n"
        f"{rows}\n\n"
        "`videoswinv2 COMMAND --help` lists a command's options. `lightning` (or `python -m videoswinv2`)\n"
        "runs the same commands; `lightning predict` is LightningCLI's own predict."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The ``videoswinv2`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    tools = _tools()
    if args and args[0] in tools:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        _quiet_warnings()
        description, add_arguments, run = tools[args[0]]
        parser = argparse.ArgumentParser(
            prog=f"videoswinv2 {args[0]}",
            description=description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        add_arguments(parser)
        interrupted = False
        try:
            result = run(parser.parse_args(args[1:]))
        except (UsageError, WorkFailed) as error:
            return _report(parser.prog, error)
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            # Out of the except block the interrupted frames are gone, and with them the
            # DataLoader iterators, which shut their workers down: nothing a worker prints on its
            # way out lands after the line below.
            gc.collect()
            again = ": rerun the same command to continue" if args[0] in RESUMABLE_TOOLS else ""
            print(f"\nvideoswinv2 {args[0]}: interrupted{again}", file=sys.stderr)
            return 130
        return result if isinstance(result, int) else 0
    if not args or args[0] in ("-h", "--help"):
        print(_main_help(tools))
        return 0 if args else 2
    if not args[0].startswith("-") and args[0] not in LIGHTNING_COMMANDS:
        commands = [*LIGHTNING_COMMANDS, *tools]
        close = difflib.get_close_matches(args[0], commands, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        print(
            f"videoswinv2: error: unknown command '{args[0]}'; {hint}(commands: {', '.join(commands)})",
            file=sys.stderr,
        )
        return 2
    # LightningCLI reads sys.argv itself when given none; passing it again makes it warn.
    return _run_lightning_cli(None if argv is None else args, "videoswinv2")


def lightning_main() -> int:
    """The ``lightning`` command: LightningCLI alone."""
    return _run_lightning_cli(None, None)


def _run_lightning_cli(args: list[str] | None, prog: str | None) -> int:
    """Run ``VideoSwinCLI``; work that failed ends in one line, exit 1."""
    try:
        VideoSwinCLI(args=args, prog=prog)
    except WorkFailed as error:
        return _report(prog or Path(sys.argv[0]).name, error)
    except KeyboardInterrupt:  # before the trainer runs (a fit's Ctrl-C is Preemption's)
        print(f"\n{prog or Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        return 130
    return 0


def _report(prog: str, error: UsageError | WorkFailed) -> int:
    """A command's end on an error it expects: one line, exit 2 (a setting to change) or 1."""
    print(f"{prog}: error: {_message(error)}", file=sys.stderr)
    return 2 if isinstance(error, UsageError) else 1


def _message(error: BaseException) -> str:
    """The error's ``summary`` (an ``InflationError``'s) or message; one from a DataLoader worker
    arrives in the worker's traceback, whose last line is ``module.Class: message``."""
    text = getattr(error, "summary", None) or str(error).strip()
    if "\nOriginal Traceback" not in text:
        return text
    return text.splitlines()[-1].split(": ", 1)[-1]


if __name__ == "__main__":
    sys.exit(main())
