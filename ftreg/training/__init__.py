"""Training: settings, run records and the pipeline that publishes what a strategy trained.

``TrainingStrategy``, ``TrainJob`` and ``TrainSpec`` are the contract's (`ftreg.contract`); they
are re-exported here, where the first release documented them, with ``seal_checkpoint`` for
strategies that write their own checkpoints.
"""

from ftreg.contract.training import StrategyOptions, TrainingStrategy, TrainJob, TrainSpec, option
from ftreg.engines.checkpoints import seal_checkpoint

__all__ = ["StrategyOptions", "TrainJob", "TrainSpec", "TrainingStrategy", "option", "seal_checkpoint"]
