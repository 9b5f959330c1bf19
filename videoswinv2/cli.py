"""Command line: LightningCLI (``fit / validate / test``) plus videoswinv2's own tools.

Under ``videoswinv2``, ``predict`` is the video predictor; LightningCLI's own ``predict`` stays
available as ``lightning predict``. Every tool's code is in ``videoswinv2.commands``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import logging
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

Tool = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], object]]

# LightningCLI's subcommands under `videoswinv2`, with the line `videoswinv2 --help` shows.
LIGHTNING_COMMANDS = {
    "fit": "train a model: videoswinv2 fit -c CONFIG",
    "validate": "score a checkpoint on the validation split: videoswinv2 validate -c CONFIG --ckpt_path CKPT",
    "test": "multi-view evaluation of a checkpoint: videoswinv2 test -c CONFIG --ckpt_path CKPT",
}


def _tools() -> dict[str, Tool]:
    from videoswinv2.commands import extract_features, inflate, make_synthetic, predict, prepare

    return {
        "inflate": ("turn a 2D SwinV2 checkpoint into a 3D state dict", inflate.add_arguments, inflate.run),
        "make-synthetic": (
            "write a synthetic motion dataset in the Kinetics layout",
            make_synthetic.add_arguments,
            make_synthetic.run,
        ),
        "predict": ("top-k classes of videos, to the terminal or a file", predict.add_arguments, predict.run),
        "extract-features": (
            "backbone features of videos as .npy files",
            extract_features.add_arguments,
            extract_features.run,
        ),
        "prepare": (
            "re-encode a dataset folder for fast training (short side, keyframes, upright, no audio)",
            prepare.add_arguments,
            prepare.run,
        ),
    }


# -- errors that end in one line naming the setting and the problem ------------------------------

_STRUCTURE = ("Does not validate against any", "Subtypes:", "Errors:", "Given value type:")


def _readable(reason: str) -> str:
    """jsonargparse's type wording -> plain words: ``Expected a <class 'int'>`` -> ``expected an int``."""
    reason = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", reason)
    reason = re.sub(r"^Expected a typing\.Literal\[(.*)\]", r"expected one of \1", reason)
    reason = re.sub(r"^Expected a (?=[aeiou])", "expected an ", reason)
    reason = re.sub(r"^Expected a ", "expected a ", reason)
    return re.sub(r"\. Got value: (.*)$", r", got '\1'", reason)


def _parameters(class_path: str) -> list[str]:
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    return [p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs")]


def _option_names(parser: argparse.ArgumentParser) -> list[str]:
    return [s[2:] for a in parser._actions for s in a.option_strings if s.startswith("--")]


def _did_you_mean(given: str, known: Iterable[str]) -> str | None:
    """The known dotted option nearest to ``given``, corrected part by part (``trainer.max_epochz``
    -> ``trainer.max_epochs``); parts past a known prefix with no known children stay as typed."""
    known_parts = [k.split(".") for k in known]
    fixed: list[str] = []
    for part in given.split("."):
        depth = len(fixed)
        children = {k[depth] for k in known_parts if k[:depth] == fixed and len(k) > depth}
        if part in children or not children:
            fixed.append(part)
            continue
        match = difflib.get_close_matches(part, children, n=1, cutoff=0.6)
        if match:
            fixed.append(match[0])
        elif fixed in known_parts:  # a class option (``model``): its init_args are not listed
            fixed += given.split(".")[depth:]
            break
        else:
            return None
    guess = ".".join(fixed)
    return guess if guess != given else None


def concise_error(message: str, parser: argparse.ArgumentParser | None = None) -> str:
    """One line out of jsonargparse's nested union-type report: the option and the problem.

    ``Parser key "data": ... Problem with given class_path '...': Parser key "decoder": Expected a
    typing.Literal['pyav', 'decord']. Got value: fancy ...`` ->
    ``--data.init_args.decoder: expected one of 'pyav', 'decord', got 'fancy'``. A message of
    another shape is returned as it is, with a "did you mean" for unrecognised options.
    """
    unrecognised = re.match(r"unrecognized arguments: (--[\w.\-]+)", message)
    if unrecognised:
        guess = _did_you_mean(unrecognised.group(1)[2:], _option_names(parser) if parser else [])
        return f"{message} (did you mean --{guess}?)" if guess else message
    keys: list[str] = []
    reasons: list[str] = []
    given = None
    class_path = ""
    for raw in message.splitlines():
        line = raw.strip().removeprefix("- ").strip()
        if not line or line.startswith(_STRUCTURE) or line == "Expected a <class 'NoneType'>":
            continue
        if match := re.fullmatch(r'Parser key "([^"]+)":', line):
            keys.append(match.group(1))
        elif match := re.fullmatch(r"Problem with given class_path '([^']+)':", line):
            class_path = match.group(1)
            keys.append("init_args")
        elif match := re.fullmatch(r"Option '([^']+)' is not accepted", line):
            guess = _did_you_mean(match.group(1), _parameters(class_path)) if class_path else None
            hint = f" (did you mean --{'.'.join(keys)}.{guess}?)" if guess else ""
            keys.append(match.group(1))
            reasons.append(f"unknown option{hint}")
        elif match := re.fullmatch(r"Given value: (.*)", line):
            nested = re.fullmatch(r"NestedArg\(key='[^']*', val='(.*)'\)", match.group(1))
            given = given or (nested.group(1) if nested else match.group(1))
        else:
            reasons.append(_readable(line))
    if not keys or not reasons:
        return message
    reason = "; ".join(dict.fromkeys(reasons))
    if given is not None and "got" not in reason and "unknown option" not in reason and len(given) < 80:
        reason += f", got {given!r}"
    return f"--{'.'.join(keys)}: {reason}"


class _ArgumentParser(LightningArgumentParser):
    """Lightning's parser; its errors end in one line naming the setting and the problem."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if self.exit_on_error:  # nested parsers report to their parent, which condenses once
            parser = getattr(ex, "subcommand_parser", None) or self
            message = concise_error(message, parser)
        super().error(message, ex)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [""])[0]


def _named_options(message: str, section: str, config: Any) -> str:
    """The ``--section.init_args.NAME`` options a message mentions (as a word, not ``NAME=``)."""
    init_args = config.get(f"{section}.init_args")
    names = [
        n
        for n in (vars(init_args) if init_args else {})
        if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w=])", message)
    ]
    return ", ".join(f"--{section}.init_args.{n}" for n in names) or f"--{section}"


# -- noise ------------------------------------------------------------------------------------------


def _quiet_lightning() -> None:
    """Drop Lightning's messages that say nothing about this run; show videoswinv2's own INFO lines."""
    for pattern in (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's own use of torch's pytree
        r"The dirpath has changed from",  # resuming into a new version folder is the normal case
        # Metrics are torchmetrics objects computed over all ranks; Lightning cannot tell.
        r"It is recommended to use `self\.log\(.*sync_dist=True\)`",
    ):
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in str(record.msg)
    )
    from lightning.pytorch.utilities import rank_zero_only

    package = logging.getLogger("videoswinv2")
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        # Under DDP every rank runs this; informational lines come from rank 0 only.
        handler.addFilter(lambda record: record.levelno >= logging.WARNING or rank_zero_only.rank == 0)
        package.addHandler(handler)
        package.setLevel(logging.INFO)  # records still propagate: handlers on the root see them too


class VideoSwinCLI(LightningCLI):
    """LightningCLI in subclass mode: ``model: class_path:`` and ``data: class_path:`` in YAML
    pick the classes. A re-run in the same log directory overwrites its saved config.

    Besides LightningCLI's behaviour: errors end in one line naming the setting; ``test`` and
    ``validate`` of a checkpoint inside a run folder log into that run
    (``RUN/test_<checkpoint name>/``); a run that fails before writing a checkpoint leaves no
    version folder behind; output to a file or pipe gets the TQDM progress bar (Rich's draws
    nothing there); ``fit`` ends by printing where the checkpoints went.
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True, prog: str | None = None) -> None:
        import lightning.pytorch as pl

        import videoswinv2.data  # noqa: F401  (registers the classes for short class_path names)
        import videoswinv2.training  # noqa: F401

        _quiet_lightning()
        super().__init__(
            # Any LightningModule / LightningDataModule, picked by class_path (subclass mode).
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            # KineticsDataModule shards every split itself so that evaluation sees each video once.
            trainer_defaults={"use_distributed_sampler": False},
            parser_class=_ArgumentParser,
            parser_kwargs={"prog": prog} if prog else None,
            args=args,
            run=run,
        )

    def _parse_ckpt_path(self) -> None:
        # Lightning reads the hyper-parameters of --ckpt_path here; a wrong file must not end in
        # a traceback from deep inside torch.load.
        config = self.config.get(self.config.get("subcommand") or "", {})
        path = config.get("ckpt_path") if config else None
        if path and "://" not in path and path not in ("best", "last", "hpc", "registry"):
            if not Path(path).is_file():
                self.parser.error(f"--ckpt_path {path}: no such file")
            try:
                super()._parse_ckpt_path()
            except SystemExit:
                raise
            except Exception as err:
                self.parser.error(
                    f"--ckpt_path {path} is not a checkpoint torch can read ({type(err).__name__}: {_first_line(err)})"
                )
            return
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        # Checked here so the message is the last line, not buried in jsonargparse's union error.
        config = self.config[self.subcommand] if self.subcommand else self.config
        # Only a fresh fit reads `pretrained`: a resumed one, test, validate and predict restore
        # the weights from their checkpoint.
        path = config.get("model.init_args.pretrained")
        fresh_fit = self.subcommand == "fit" and config.get("ckpt_path") is None
        if fresh_fit and path is not None and not Path(path).exists():
            self.parser.error(
                f"the pretrained checkpoint {path} does not exist: download it (see README) and set "
                "--model.init_args.pretrained to its path, or to null to train from scratch"
            )
        self._log_into_evaluated_run(config)

    def _log_into_evaluated_run(self, config: Any) -> None:
        """``test`` / ``validate`` of ``RUN/checkpoints/X.ckpt`` log into ``RUN/<subcommand>_X``,
        beside the training run, unless the logger's version is set."""
        ckpt = config.get("ckpt_path")
        logger = config.get("trainer.logger")
        if self.subcommand not in ("test", "validate") or not ckpt or "://" in ckpt:
            return
        if Path(ckpt).parent.name != "checkpoints" or not hasattr(logger, "init_args"):
            return
        init_args = logger.init_args
        if "save_dir" not in init_args or init_args.get("version") is not None:
            return
        init_args.save_dir = str(Path(ckpt).parent.parent)
        init_args.name = ""
        init_args.version = f"{self.subcommand}_{Path(ckpt).stem}"

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
        reason = _first_line(cause)
        reason = reason if isinstance(cause, ValueError) else f"{type(cause).__name__}: {reason}"
        if getattr(self, "config_init", None) is not None:  # the classes were built; the Trainer failed
            return f"--trainer: {reason}"
        config = self.config[self.subcommand] if self.subcommand else self.config
        built = re.search(r"class_path='([^']+)'", str(err))
        for section in ("model", "data"):
            if built and config.get(f"{section}.class_path") == built.group(1):
                return f"{_named_options(str(cause), section, config)}: {reason}"
        return reason

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        wants_bar = config.get("enable_progress_bar", True) is not False
        if wants_bar and not sys.stderr.isatty():
            if not any(isinstance(c, ProgressBar) for c in [*configured, *callbacks]):
                callbacks = [*callbacks, TQDMProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def _run_subcommand(self, subcommand: str) -> None:
        root = self._log_root()
        before = set(root.iterdir()) if root is not None and root.is_dir() else set()
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            self._remove_failed_run(before)
            raise

    def _log_root(self) -> Path | None:
        """The folder that holds the logger's version folders (no version is resolved)."""
        logger = self.trainer.logger
        root = getattr(logger, "root_dir", None)
        return Path(root) if root and hasattr(logger, "version") else None

    def _remove_failed_run(self, before: set[Path]) -> None:
        """A version folder this run created, holding no checkpoint, goes: the next run takes its
        number, so ``version_0`` stays the first run that got anywhere."""
        root = self._log_root()
        logger = self.trainer.logger
        if root is None or not self.trainer.is_global_zero or getattr(logger, "_version", None) is None:
            return
        run_dir = Path(logger.log_dir)
        if run_dir.parent == root and run_dir.is_dir() and run_dir not in before:
            if not any(run_dir.rglob("*.ckpt")):
                shutil.rmtree(run_dir, ignore_errors=True)

    def after_fit(self) -> None:
        if not self.trainer.is_global_zero:
            return
        lines = []
        for callback in self.trainer.checkpoint_callbacks:
            if callback.monitor and callback.best_model_path:
                score = callback.best_model_score
                lines.append(
                    f"best checkpoint ({callback.monitor} = {float(score):.4f}): {callback.best_model_path}"
                )
            elif callback.best_model_path:
                lines.append(f"latest checkpoint: {callback.best_model_path}")
        if self.trainer.logger is not None:
            lines.append(f"logs: {self.trainer.log_dir}")
        print("\n".join(lines))


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
        description, add_arguments, run = tools[args[0]]
        parser = argparse.ArgumentParser(
            prog=f"videoswinv2 {args[0]}",
            description=description,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        add_arguments(parser)
        result = run(parser.parse_args(args[1:]))
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
    VideoSwinCLI(args=None if argv is None else args, prog="videoswinv2")
    return 0


def lightning_main() -> int:
    """The ``lightning`` command: LightningCLI alone."""
    VideoSwinCLI()
    return 0


if __name__ == "__main__":
    sys.exit(main())
