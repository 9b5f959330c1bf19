from .module import VideoClassifier
from .pictures import ReconstructionPictures
from .pretraining import MaskedVideoPretraining

__all__ = ["MaskedVideoPretraining", "ReconstructionPictures", "VideoClassifier"]
