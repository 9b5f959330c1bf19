"""What a fit trains on and in which order, saved in every checkpoint and checked on resume: a
resumed run on other data or another loader would continue without a word, on batches the
checkpoint's position does not describe."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from videoswinv2.errors import UsageError

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "videoswinv2_run_identity"
# What shapes the data and what shapes the order of its batches, and the option accepting each.
DATA = ("data_root", "files", "classes", "videos", "video_list")
LOADER = ("batch_size", "num_workers", "clips_per_video", "world_size", "seed", "seed_everything")
ACCEPT = {
    "data": "--trainer.callbacks+=videoswinv2.data.RunIdentity --trainer.callbacks.accept_new_data true",
    "loader": "--trainer.callbacks+=videoswinv2.data.RunIdentity --trainer.callbacks.accept_new_loader true",
}


def file_identity(path: Path) -> str:
    """``size bytes, sha256 ...`` of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stat().st_size} bytes, sha256 {digest.hexdigest()[:16]}"


def video_list_identity(videos: list[tuple[str, Any]], root: Path) -> str:
    """A hash of the training videos in order (paths relative to ``root``, labels or actions): what the
    sampler's indices mean, for every format (class folders and split folders included), read
    from the list the data module holds rather than from the disk."""
    digest = hashlib.sha256()
    for path, label in videos:
        relative = os.path.relpath(path, root) if Path(path).is_relative_to(root) else path
        digest.update(f"{relative}\t{label}\n".encode())
    return f"sha256 {digest.hexdigest()[:16]}"


def differences(saved: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, str]]:
    """``(kind, description)`` of each entry the checkpoint holds that differs now; kind is ``data``
    or ``loader``, or ``moved`` for a ``data_root`` whose files, classes and videos are the same."""
    found = []
    same_data = all(saved.get(key) == now.get(key) for key in DATA if key in saved and key != "data_root")
    for key in (*DATA, *LOADER):
        if key not in saved or saved[key] == now.get(key):
            continue
        kind = "data" if key in DATA else "loader"
        if key == "data_root" and same_data:
            kind = "moved"
        if key == "video_list":
            if saved.get("videos") == now.get("videos"):  # else the count says it
                found.append((kind, "the training videos (as many, but other files, labels or order)"))
        elif key == "classes":
            added = [c for c in now[key] if c not in saved[key]]
            removed = [c for c in saved[key] if c not in now[key]]
            what = f"{len(added)} added {added[:3]}, {len(removed)} removed {removed[:3]}"
            found.append((kind, f"the class list ({what if added or removed else 'another order'})"))
        elif key == "files":
            for name in sorted(set(saved[key]) | set(now[key])):
                if saved[key].get(name) != now[key].get(name):
                    was, now_is = saved[key].get(name, "absent"), now[key].get(name, "absent")
                    found.append((kind, f"{name} is {now_is} (checkpoint: {was})"))
        else:
            found.append((kind, f"{key} is {now.get(key)} (checkpoint: {saved[key]})"))
    return found


def start_next_epoch(loops: dict[str, Any]) -> int:
    """Make a checkpoint's fit-loop state say that its epoch is over, so the loader starts the next
    one from its first batch (a mid-epoch position means nothing in other data or another
    loader). Returns the epoch that was interrupted."""
    fit = loops["fit_loop"]
    epochs = fit["epoch_progress"]
    for counts in (epochs["total"], epochs["current"]):
        counts.update(ready=counts["started"], processed=counts["started"], completed=counts["started"])
    batches = fit["epoch_loop.batch_progress"]
    batches["current"] = dict.fromkeys(batches["current"], 0)
    batches["is_last_batch"] = False
    fit["state_dict"].pop("combined_loader", None)
    return epochs["current"]["started"] - 1


class RunIdentity(pl.Callback):
    """Saves the fit's identity (the data module's ``run_identity``: data, annotation files'
    hashes, classes, the training videos' list; loader settings, world size, seeds) in every checkpoint; a resumed
    fit whose identity differs stops with one line naming each difference and the option that
    accepts it (``accept_new_data``, ``accept_new_loader``), then goes on from the next epoch's
    first batch. One of the trainer's default callbacks."""

    def __init__(self, accept_new_data: bool = False, accept_new_loader: bool = False) -> None:
        self.accept = {"data": accept_new_data, "loader": accept_new_loader}

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        identity = getattr(trainer.datamodule, "run_identity", None)
        if identity is not None:
            checkpoint[CHECKPOINT_KEY] = identity()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        identity = getattr(trainer.datamodule, "run_identity", None)
        saved = checkpoint.get(CHECKPOINT_KEY)
        if identity is None or saved is None or trainer.state.fn != "fit":
            return  # test, validate, predict: a checkpoint's weights on any data, any devices
        found = differences(saved, identity())
        for _, text in (entry for entry in found if entry[0] == "moved"):
            log.info("%s: the same annotation files, classes and videos, so the run goes on", text)
        found = [entry for entry in found if entry[0] != "moved"]
        refused = [text for kind, text in found if not self.accept[kind]]
        if refused:
            kinds = sorted({kind for kind, text in found if not self.accept[kind]})
            raise UsageError(
                f"this run is not the checkpoint's: {'; '.join(refused)}. Resume with the checkpoint's "
                f"data and settings, or continue on purpose from the next epoch with "
                f"{' '.join(ACCEPT[kind] for kind in kinds)}"
            )
        if found:
            epoch = start_next_epoch(checkpoint["loops"])
            trainer.datamodule.drop_loader_position()
            if trainer.is_global_zero:
                log.warning(
                    "continuing on purpose with %s: epoch %d is left as it was, the loader starts epoch %d "
                    "from its first batch",
                    "; ".join(text for _, text in found),
                    epoch,
                    epoch + 1,
                )


def global_seed() -> int | None:
    """The seed ``seed_everything`` set (LightningCLI's ``seed_everything``)."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    return None if seed is None else int(seed)
