from .module import VideoClassifier
from .nonfinite import NonFiniteSteps, NonFiniteStepsError
from .pictures import ReconstructionPictures
from .preemption import Preemption
from .pretraining import MaskedVideoPretraining

__all__ = [
    "MaskedVideoPretraining",
    "NonFiniteSteps",
    "NonFiniteStepsError",
    "Preemption",
    "ReconstructionPictures",
    "VideoClassifier",
]
