"""Inference at scale: a model over many videos through Lightning's predict loop.

Videos are decoded in DataLoader workers into batches of views
(:mod:`videoswinv2.data.view_stream`; timeline windows: :mod:`videoswinv2.data.timeline`), run
through ``VideoClassifier.predict_step``, which gathers them into one result per video or window,
and written by a writer callback (:mod:`.writers`, :mod:`.timeline`) into outputs that record
what produced them (:mod:`.outputs`). :mod:`.export` writes a model as ONNX or ``.pt2``.
"""

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
