from .module import VideoClassifier
from .nonfinite import NonFiniteSteps, NonFiniteStepsError
from .preemption import Preemption

__all__ = ["NonFiniteSteps", "NonFiniteStepsError", "Preemption", "VideoClassifier"]
