"""Inference at scale: a model over many videos through Lightning's predict loop.

Videos are decoded in DataLoader workers into batches of views
(:mod:`videoswinv2.data.view_stream`), run through ``VideoClassifier.predict_step`` and gathered
per video by a writer callback (:mod:`.writers`).
"""

from videoswinv2.data.view_stream import VideoListData, ViewStream, view_loader
from videoswinv2.inference.engine import keep_freed_memory, predict_videos
from videoswinv2.inference.inputs import collect_videos, mirrored_path
from videoswinv2.inference.loading import LoadedModel, load_model
from videoswinv2.inference.precision import choose_precision, cpu_flags
from videoswinv2.inference.writers import FeatureWriter, PredictionWriter, read_rows

__all__ = [
    "FeatureWriter",
    "LoadedModel",
    "PredictionWriter",
    "VideoListData",
    "ViewStream",
    "choose_precision",
    "collect_videos",
    "cpu_flags",
    "keep_freed_memory",
    "load_model",
    "mirrored_path",
    "predict_videos",
    "read_rows",
    "view_loader",
]
