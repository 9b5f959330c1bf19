"""The ``videoswinv2`` command-line tools, each a pair ``add_*_arguments`` / ``run_*`` over the
library; ``videoswinv2.cli`` lists them."""

from videoswinv2.commands.extract_features import add_extract_features_arguments, run_extract_features
from videoswinv2.commands.predict import add_predict_arguments, run_predict

__all__ = [
    "add_extract_features_arguments",
    "add_predict_arguments",
    "run_extract_features",
    "run_predict",
]
