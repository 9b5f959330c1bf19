from videoswinv2.data.geometry import ClipGeometry

from .checkpoint_io import BestCheckpoint, WholeCheckpointIO
from .module import VideoClassifier
from .nonfinite import NonFiniteSteps, NonFiniteStepsError
from .pictures import ReconstructionPictures
from .preemption import Preemption
from .pretraining import MaskedVideoPretraining
from .reports import TestReport

__all__ = [
    "BestCheckpoint",
    "ClipGeometry",
    "MaskedVideoPretraining",
    "NonFiniteSteps",
    "NonFiniteStepsError",
    "Preemption",
    "ReconstructionPictures",
    "TestReport",
    "VideoClassifier",
    "WholeCheckpointIO",
]
