"""``UnlabelledVideoDataModule``: clips of unlabelled videos, for self-supervised pretraining:
``VideoDataModule`` with its reading hooks (``read_classes``, ``split_videos``, ``_synthetic_due``) replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videoswinv2.data.annotations import VIDEO_EXTENSIONS, Subset, VideoRecord, find_videos
from videoswinv2.data.datamodule import VideoDataModule
from videoswinv2.data.formats import dataset_classes, detect_format, read_annotations
from videoswinv2.errors import UsageError

NO_LABEL = -1  # what batches carry as `label`: a loss that used it would fail, not learn noise


def unlabelled_videos(source: str | Path, root: str | Path) -> list[VideoRecord]:
    """The videos of ``source``, labelled :data:`NO_LABEL`: a folder's, searched recursively, or
    those a single-file annotation file lists (paths relative to ``root``), whatever its labels."""
    source = Path(source)
    if source.is_dir():
        paths = [str(source / video) for video in find_videos(source)]
    elif source.is_file():
        kind = detect_format(source)
        classes = _list_label_names(source) if kind == "list" else dataset_classes(source, kind)
        paths = [video.path for video in read_annotations(source, root, classes, kind).videos]
    else:
        raise UsageError(f"{source} does not exist: give a folder of videos or an annotation file")
    if not paths:
        raise UsageError(
            f"{source} holds no videos ({'/'.join(VIDEO_EXTENSIONS)}), or none of the files it lists exist"
        )
    return [VideoRecord(path, NO_LABEL) for path in paths]


def _list_label_names(annotations: Path) -> list[str]:
    """Names for every label index of a ``path label`` list, so that reading it checks its rows
    and finds its videos whatever the labels."""
    rows = [line.split() for line in annotations.read_text(encoding="utf-8-sig").splitlines()]
    last = [row[-1] for row in rows if len(row) >= 2]
    return [str(i) for i in range(max((int(t) for t in last if t.isdigit()), default=0) + 1)]


class UnlabelledVideoDataModule(VideoDataModule):
    """Training (and optionally validation) clips of unlabelled videos: ``VideoDataModule``'s
    batches, ``video`` ``(B * clips_per_video, C, T, H, W)``, with ``label`` :data:`NO_LABEL`.
    Its ``test_*`` settings are the views ``videoswinv2 extract-features`` uses.

    Args:
        data_root: the folder of videos; relative paths below are relative to it.
        videos: a folder (searched recursively) or an annotation file (labels ignored); default:
            every video under ``data_root`` (of a generated dataset: its training split).
        val_videos: the same, for validation (the reconstruction loss on fixed masks); default none.
        **kwargs: ``VideoDataModule``'s settings; ``synthetic`` generates a dataset into
            ``data_root`` only when that folder is missing or empty.
    """

    def __init__(
        self,
        data_root: str | None = None,
        videos: str | None = None,
        val_videos: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            data_root=data_root,
            train_annotations=videos,
            val_annotations=val_videos,
            test_annotations=None,
            class_names_file=None,
            **kwargs,
        )

    def read_classes(self) -> list[str]:
        return []  # no labels

    def _synthetic_due(self) -> bool:
        return not (self.root.is_dir() and any(self.root.iterdir()))  # your own videos are read as they are

    def split_videos(self, split: Subset) -> list[VideoRecord]:
        source = self.split_sources[split]
        if source is not None:
            return unlabelled_videos(self._path(source), self.root)
        if split == "train":
            generated = self.synthetic is not None and (self.root / "classes.txt").is_file()
            return unlabelled_videos(self.root / "train" if generated else self.root, self.root)
        raise UsageError(f"no {split}_videos given, so there is no {split} split")
