"""Batches of views over a list of *tasks* (a video in its evaluation views,
:class:`MultiViewTask`, or a stretch of timeline windows, ``TimelineTask``), decoded in
DataLoader workers. A task yields ``(Item, views)``: what one result is about and ``(v, C, T, H,
W)`` of its views. Each worker runs its share one task at a time into batches filled across task
boundaries, so memory holds one task's frames and a batch per worker; a video that cannot be read
is reported in the next batch's ``failed``, never stopping the stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from videoswinv2.data.annotations import Target
from videoswinv2.data.clip_planning import evaluation_clips
from videoswinv2.data.clip_reading import read_clips
from videoswinv2.data.decoding import VideoDecodeError, open_video
from videoswinv2.data.transforms import as_video, three_crop_views
from videoswinv2.data.views import clip_spec
from videoswinv2.record import EvalViews

ViewBatch = dict[str, Any]


class WindowSpan(NamedTuple):
    """Where a timeline window lies in its video: window ``number``, covering ``[start_s, end_s)``
    seconds."""

    number: int
    start_s: float
    end_s: float


class Item(NamedTuple):
    """What one result is about: a video in its evaluation views, or one window of a video
    (``window``), from ``num_views`` views whose probabilities make the result's by
    ``reduction`` (``mean`` or ``max``); ``label`` is the class index (-1 when unknown), or the
    classes of a multi-label video; ``index`` its position in its split (-1: unknown).
    (Named tuples, not dataclasses: Lightning moves batches to the device through them.)"""

    video: str
    num_views: int
    label: Target = -1
    index: int = -1
    window: WindowSpan | None = None
    reduction: str = "mean"


class Finished(NamedTuple):
    """A task run to its end: part ``part`` of the ``parts`` of ``video``'s work."""

    video: str
    part: int = 0
    parts: int = 1


class Task(Protocol):
    """A unit of work of the stream: one video, or one part of a video."""

    video: str
    device: str  # where its frames are decoded: "cpu", or "cuda" (in the main process only)

    def failure_item(self) -> Item:
        """The item a failure of this task is reported under."""

    def finished(self) -> Finished:
        """What the stream reports once the task ran to its end."""

    def __iter__(self) -> Iterator[tuple[Item, torch.Tensor]]:
        """``(item, views)`` with ``views`` ``(v, C, T, H, W)`` float, normalised."""


def view_clips(views: EvalViews, path: str, device: str = "cpu") -> Iterator[torch.Tensor]:
    """The clips of ``path`` that ``views`` are cut from, short side resized (while decoding):
    each ``(T, C, H, W)`` uint8 on ``device``, every frame decoded and resized once. Raises
    :class:`VideoDecodeError` for a video that cannot be read."""
    with open_video(path, views.decoder, short_side=views.short_side, device=device) as reader:
        clips = evaluation_clips(
            reader.num_frames, reader.fps, clip_spec(views), views.num_clips, views.clip_placement
        )
        return read_clips(reader, clips, as_video)


def load_views(views: EvalViews, path: str, device: str = "cpu") -> torch.Tensor:
    """All views of ``path``: ``(V, C, T, crop, crop)`` float, clip-major (clip0-crop0,
    clip0-crop1, clip0-crop2, clip1-crop0, ...), normalised."""
    return torch.cat([three_crop_views(clip, views.crop_size) for clip in view_clips(views, path, device)])


@dataclass(frozen=True)
class MultiViewTask:
    """A video in its evaluation views (``3 * num_clips``), yielded one clip's three at a time, so
    memory holds the decoded frames and one clip's views whatever ``num_clips`` is."""

    video: str
    views: EvalViews
    label: Target = -1
    index: int = -1
    device: str = "cpu"

    def failure_item(self) -> Item:
        return Item(self.video, self.views.num_views, self.label, self.index, reduction=self.views.reduction)

    def finished(self) -> Finished:
        return Finished(self.video)

    def __iter__(self) -> Iterator[tuple[Item, torch.Tensor]]:
        item = self.failure_item()
        for clip in view_clips(self.views, self.video, self.device):
            yield item, three_crop_views(clip, self.views.crop_size)


def failure_reason(path: str, error: Exception) -> str:
    """One line saying why ``path`` failed: the decoder's message, or the error's type and message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text.removeprefix(f"{path}: ")  # the row names the video already
    return text if isinstance(error, VideoDecodeError) else f"{type(error).__name__}: {text}"


class ViewStream(IterableDataset):
    """Batches of views of the tasks of every ``world``-th video from the ``rank``-th, split
    further between DataLoader workers: ``video`` ``(b, C, T, crop, crop)`` float (b may be 0);
    ``item`` and ``view`` of each view; ``failed`` ``(item, reason)`` and ``finished``
    (:class:`Finished`) of the tasks that failed or ended since the previous batch."""

    def __init__(self, tasks: Sequence[Task], batch_size: int, rank: int = 0, world: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = {video: k for k, video in enumerate(dict.fromkeys(task.video for task in tasks))}
        self.tasks = [task for task in tasks if order[task.video] % world == rank]
        self.batch_size = batch_size

    @staticmethod
    def _batch(clips: list[torch.Tensor], items: list[Item], views: list[int], failed: list, finished: list):
        return {
            "video": torch.stack(clips) if clips else torch.empty(0),
            "item": items,
            "view": torch.tensor(views, dtype=torch.long),
            "failed": failed,
            "finished": finished,
        }

    def __iter__(self) -> Iterator[ViewBatch]:
        info = get_worker_info()
        mine = self.tasks if info is None else self.tasks[info.id :: info.num_workers]
        clips, items, views, failed, finished = [], [], [], [], []  # the batch being filled
        seen: dict[Item, int] = {}  # views of each item so far (an item's views may span chunks)
        for task in mine:
            try:
                for item, chunk in task:
                    for view in chunk:
                        clips.append(view)
                        items.append(item)
                        views.append(seen.get(item, 0))
                        seen[item] = views[-1] + 1
                        if len(clips) == self.batch_size:
                            yield self._batch(clips, items, views, failed, finished)
                            clips, items, views, failed, finished = [], [], [], [], []
                    if seen.get(item) == item.num_views:
                        del seen[item]
            except Exception as error:  # noqa: BLE001  (any failure of one video must not stop the run)
                failed.append((task.failure_item(), failure_reason(task.video, error)))
                # The views of an item cut short by the failure never make a result: drop them.
                keep = [k for k, item in enumerate(items) if item not in seen]
                clips, items, views = ([x[k] for k in keep] for x in (clips, items, views))
                seen.clear()
                continue
            finished.append(task.finished())
        if clips or failed or finished:
            yield self._batch(clips, items, views, failed, finished)


def view_loader(
    tasks: Sequence[Task], batch_size: int, num_workers: int, rank: int = 0, world: int = 1
) -> DataLoader:
    """A DataLoader over :class:`ViewStream` batches (``batch_size`` counts views); tasks that
    decode on a GPU run in this process (CUDA does not survive forking into workers)."""
    on_cpu = all(task.device == "cpu" for task in tasks)
    return DataLoader(
        ViewStream(tasks, batch_size, rank, world),
        batch_size=None,  # the stream batches itself, across video boundaries
        num_workers=num_workers if on_cpu else 0,
        pin_memory=torch.cuda.is_available() and on_cpu,
    )


def multi_view_tasks(videos: Sequence[str], views: EvalViews, device: str = "cpu") -> list[MultiViewTask]:
    """Unlabelled videos in their evaluation views (what ``predict`` runs), decoded on ``device``."""
    return [MultiViewTask(video, views, device=device) for video in videos]


class VideoListData(pl.LightningDataModule):
    """Tasks to predict on, for ``Trainer.predict``; each device reads its share."""

    def __init__(self, tasks: Sequence[Task], batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.batch_size, self.num_workers = batch_size, num_workers

    def predict_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        return view_loader(self.tasks, self.batch_size, self.num_workers, rank, world)
