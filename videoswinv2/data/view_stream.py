"""Batches of views over a list of videos, decoded in DataLoader workers.

Each worker takes its share of the videos (and each device its share of those), decodes one
video at a time and cuts its views one clip at a time, and yields batches of at most
``batch_size`` views, filled across video boundaries: memory holds one video's decoded frames and
a batch of views per worker, whatever the number of views or videos. A video that cannot be read
never stops the stream: it is reported in the next batch's ``failed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from videoswinv2.data.decoding import VideoDecodeError
from videoswinv2.data.views import EvalViews

ViewBatch = dict[str, Any]


def _reason(path: str, error: Exception) -> str:
    """One line saying why ``path`` failed: the decoder's message, or the error's type and message."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text.removeprefix(f"{path}: ")  # the row names the video already
    return text if isinstance(error, VideoDecodeError) else f"{type(error).__name__}: {text}"


class ViewStream(IterableDataset):
    """Batches of views of ``videos[rank::world]``, split further between DataLoader workers.

    A batch is a dict: ``video`` ``(b, C, T, crop, crop)`` float (b may be 0), ``path`` and
    ``view`` (the video and the view index of each of the b views, clip-major as
    :meth:`EvalViews.load`), ``num_views`` (views per video), and ``failed``: ``(path, reason)``
    of the videos that could not be read since the previous batch.
    """

    def __init__(
        self, videos: Sequence[str], views: EvalViews, batch_size: int, rank: int = 0, world: int = 1
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.videos = list(videos)[rank::world]
        self.views = views
        self.batch_size = batch_size

    def _batch(
        self, clips: list[torch.Tensor], paths: list[str], views: list[int], failed: list
    ) -> ViewBatch:
        video = torch.stack(clips) if clips else torch.empty(0)
        return {
            "video": video,
            "path": paths,
            "view": torch.tensor(views, dtype=torch.long),
            "num_views": self.views.num_views,
            "failed": failed,
        }

    def __iter__(self) -> Iterator[ViewBatch]:
        info = get_worker_info()
        mine = self.videos if info is None else self.videos[info.id :: info.num_workers]
        clips: list[torch.Tensor] = []
        paths: list[str] = []
        views: list[int] = []
        failed: list[tuple[str, str]] = []
        for path in mine:
            try:
                view_iter = self.views.iter_clip_views(path)
                first = next(view_iter)  # decoding happens here: a broken video fails before any view
            except Exception as error:  # noqa: BLE001  (any failure of one video must not stop the run)
                failed.append((path, _reason(path, error)))
                continue
            index = 0
            for three in itertools.chain([first], view_iter):  # one clip's views at a time
                for view in three:
                    clips.append(view)
                    paths.append(path)
                    views.append(index)
                    index += 1
                    if len(clips) == self.batch_size:
                        yield self._batch(clips, paths, views, failed)
                        clips, paths, views, failed = [], [], [], []
        if clips or failed:
            yield self._batch(clips, paths, views, failed)


def view_loader(
    videos: Sequence[str], views: EvalViews, batch_size: int, num_workers: int, rank: int = 0, world: int = 1
) -> DataLoader:
    """A DataLoader over :class:`ViewStream` batches (``batch_size`` counts views)."""
    return DataLoader(
        ViewStream(videos, views, batch_size, rank, world),
        batch_size=None,  # the stream batches itself, across video boundaries
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
    )


class VideoListData(pl.LightningDataModule):
    """A list of videos to predict on, for ``Trainer.predict``; each device reads its share."""

    def __init__(self, videos: Sequence[str], views: EvalViews, batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.videos, self.views = list(videos), views
        self.batch_size, self.num_workers = batch_size, num_workers

    def predict_dataloader(self) -> DataLoader:
        rank, world = self.trainer.global_rank, self.trainer.world_size
        return view_loader(self.videos, self.views, self.batch_size, self.num_workers, rank, world)
