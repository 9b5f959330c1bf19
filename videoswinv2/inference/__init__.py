"""Inference at scale: a model over many videos through Lightning's predict loop (batches of
views from :mod:`videoswinv2.data.view_stream`, results written by the callbacks of
:mod:`.writers` and :mod:`.timeline` into the outputs of :mod:`.outputs`), and :mod:`.export`."""

from videoswinv2.data.view_stream import (
    MultiViewTask,
    VideoListData,
    ViewStream,
    multi_view_tasks,
    view_loader,
)
from videoswinv2.inference.engine import keep_freed_memory, predict_videos
from videoswinv2.inference.inputs import collect_videos, mirrored_path
from videoswinv2.inference.loading import LoadedModel, load_model
from videoswinv2.inference.outputs import OutputError, read_rows
from videoswinv2.inference.precision import choose_precision, cpu_flags
from videoswinv2.inference.timeline import TimelineWriter, merge_segments
from videoswinv2.inference.writers import FeatureWriter, PredictionWriter

__all__ = [
    "FeatureWriter",
    "LoadedModel",
    "OutputError",
    "PredictionWriter",
    "TimelineWriter",
    "VideoListData",
    "MultiViewTask",
    "ViewStream",
    "choose_precision",
    "collect_videos",
    "cpu_flags",
    "keep_freed_memory",
    "load_model",
    "merge_segments",
    "mirrored_path",
    "predict_videos",
    "read_rows",
    "multi_view_tasks",
    "view_loader",
]
