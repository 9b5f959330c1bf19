from .module import VideoClassifier

__all__ = ["VideoClassifier"]
