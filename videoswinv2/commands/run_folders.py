"""Where a LightningCLI run logs: the run-folder policy of ``videoswinv2 fit / validate / test``, as
functions of the folders (the CLI applies them to the logger's settings)."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Continuation:
    """How ``fit --ckpt_path last`` continues: logging on in ``version`` (where Lightning finds
    ``last.ckpt``), or in a new version resuming from ``ckpt_path``; neither: as configured."""

    version: str | None = None
    ckpt_path: str | None = None


def continue_last_run(root: Path, version: int | str | None, reuses_folders: bool) -> Continuation | None:
    """``fit --ckpt_path last`` for a logger whose version folders are in ``root``: the given
    ``version``, else the newest run with ``checkpoints/last.ckpt``. A logger that only adds to a
    folder (TensorBoard) logs on in it; another (CSVLogger deletes metrics.csv) gets a new version
    and the checkpoint's path. None: no run to continue, so the fit starts a new one."""
    if version is not None:
        folder = root / (version if isinstance(version, str) else f"version_{version}")
        return Continuation() if folder.is_dir() else None
    newest = max(root.glob("*/checkpoints/last.ckpt"), key=lambda path: path.stat().st_mtime, default=None)
    if newest is None:
        return None
    if reuses_folders:
        return Continuation(version=newest.parent.parent.name)
    return Continuation(ckpt_path=str(newest))


def unreadable_checkpoint(ckpt: Path) -> str | None:
    """None when ``ckpt`` is whole (a zip archive, whose directory comes last); else a line naming
    the newest whole checkpoint beside it to resume from instead."""
    if not ckpt.is_file() or zipfile.is_zipfile(ckpt):
        return None
    whole = [other for other in ckpt.parent.glob("*.ckpt") if other != ckpt and zipfile.is_zipfile(other)]
    newest = max(whole, key=lambda path: path.stat().st_mtime, default=None)
    instead = (
        f"resume from the newest readable checkpoint of the run with --ckpt_path {newest}"
        if newest
        else "no other checkpoint of the run is readable: start again without --ckpt_path"
    )
    return f"{ckpt} cannot be read (cut short while it was written?): {instead}"


def evaluated_run(subcommand: str, ckpt_path: str | None) -> tuple[Path, str] | None:
    """``test`` / ``validate`` of ``RUN/checkpoints/X.ckpt`` log into ``RUN``, version
    ``<subcommand>_X``; None for other subcommands and checkpoints outside a run."""
    if subcommand not in ("test", "validate") or not ckpt_path or "://" in ckpt_path:
        return None
    ckpt = Path(ckpt_path)
    if ckpt.parent.name != "checkpoints":
        return None
    return ckpt.parent.parent, f"{subcommand}_{ckpt.stem}"


def runs_in(root: Path | None) -> set[Path]:
    """The run folders in ``root`` now (none if it does not exist)."""
    return set(root.iterdir()) if root is not None and root.is_dir() else set()


def remove_failed_run(run_dir: Path, root: Path, before: set[Path]) -> bool:
    """Remove ``run_dir``, a version folder in ``root``, if the failed run created it (not in
    ``before``) and it holds no checkpoint, so ``version_0`` stays the first run that got anywhere.
    Returns whether it was removed."""
    if run_dir.parent != root or not run_dir.is_dir() or run_dir in before or any(run_dir.rglob("*.ckpt")):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True
