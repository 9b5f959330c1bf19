"""Video data: annotation formats (Kinetics, UCF101, HMDB51, Something-Something V2, Charades, class
folders, multi-label lists and CSVs, and any registered one), clip planning, decoding, clip
reading, transforms, datasets, the Lightning DataModule, and offline tools (re-encoding, synthetic
motion and object datasets)."""

from videoswinv2.data.annotations import AnnotationFormat, Annotations, VideoRecord, read_class_names
from videoswinv2.data.broken_videos import BrokenVideoLogger
from videoswinv2.data.clip_planning import (
    ClipSpec,
    center_clip,
    center_segment_clip,
    evaluation_clips,
    random_segment_clip,
    segment_centred_clips,
    spread_clips,
    train_clip,
    train_clips,
)
from videoswinv2.data.datamodule import KineticsDataModule, ShardSampler, VideoDataModule
from videoswinv2.data.datasets import VideoClipDataset, collate_clips, collate_videos
from videoswinv2.data.decoding import DecoderName, VideoDecodeError, VideoReader, open_video
from videoswinv2.data.formats import dataset_classes, detect_format, read_annotations, register_format
from videoswinv2.data.formats.class_folders import read_class_folders
from videoswinv2.data.formats.hmdb51 import read_hmdb51
from videoswinv2.data.formats.kinetics_csv import read_kinetics_csv
from videoswinv2.data.formats.list_file import read_list_file
from videoswinv2.data.formats.ssv2 import read_ssv2
from videoswinv2.data.formats.ucf101 import read_ucf101
from videoswinv2.data.offline.objects import OBJECT_KINDS, ObjectSpec, make_object_dataset
from videoswinv2.data.offline.synthetic import SYNTHETIC_CLASSES, SyntheticSpec, make_synthetic_dataset
from videoswinv2.data.run_identity import RunIdentity
from videoswinv2.data.sampling import ResumableSampler, SampleKey
from videoswinv2.data.transforms import EvalTransform, TrainTransform, mirrored_classes, normalize
from videoswinv2.data.unlabelled import UnlabelledVideoDataModule, unlabelled_videos
from videoswinv2.data.view_stream import load_views

__all__ = [
    "OBJECT_KINDS",
    "SYNTHETIC_CLASSES",
    "AnnotationFormat",
    "Annotations",
    "BrokenVideoLogger",
    "ClipSpec",
    "DecoderName",
    "EvalTransform",
    "KineticsDataModule",
    "ObjectSpec",
    "ResumableSampler",
    "RunIdentity",
    "SampleKey",
    "ShardSampler",
    "SyntheticSpec",
    "TrainTransform",
    "UnlabelledVideoDataModule",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoDecodeError",
    "VideoReader",
    "VideoRecord",
    "center_clip",
    "center_segment_clip",
    "collate_clips",
    "collate_videos",
    "dataset_classes",
    "detect_format",
    "evaluation_clips",
    "load_views",
    "make_object_dataset",
    "make_synthetic_dataset",
    "mirrored_classes",
    "normalize",
    "open_video",
    "random_segment_clip",
    "read_annotations",
    "read_class_folders",
    "read_class_names",
    "read_hmdb51",
    "read_kinetics_csv",
    "read_list_file",
    "read_ssv2",
    "read_ucf101",
    "register_format",
    "segment_centred_clips",
    "spread_clips",
    "train_clip",
    "train_clips",
    "unlabelled_videos",
]
