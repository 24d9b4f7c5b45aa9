"""Training: the spec of a run, what strategies receive, and the pipeline that publishes results."""

from ftreg.training.spec import TrainSpec
from ftreg.training.strategy import TrainingStrategy, TrainJob

__all__ = ["TrainJob", "TrainSpec", "TrainingStrategy"]
