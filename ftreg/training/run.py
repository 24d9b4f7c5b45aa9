"""The `ftreg train` pipeline: dataset -> examples -> strategy -> published version.

Everything that can be wrong with the user's input is checked before the base is loaded, so a
mistake costs seconds, not a training run; nothing is published unless training finished.
"""

from __future__ import annotations

import hashlib
import json

from ftreg import plugins
from ftreg.bases import resolve_base
from ftreg.data import dataset_path
from ftreg.errors import DatasetError
from ftreg.registry import Entry, Registry
from ftreg.training.examples import encode, split
from ftreg.training.spec import TrainSpec
from ftreg.training.strategy import TrainJob


def train(spec: TrainSpec, registry: Registry, show_progress: bool = True) -> Entry:
    strategy = plugins.get_training_strategy(spec.strategy)
    dataset_format = plugins.get_dataset_format(spec.format)
    path = dataset_path(spec.dataset)
    examples = dataset_format.read(path)
    if not examples:
        raise DatasetError(f"{path}: the dataset has no examples")

    base = resolve_base(spec.base, registry)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.path)
    max_length = min(spec.max_length, _context_length(base.path))
    encoded, truncated = encode(examples, tokenizer, max_length)
    train_set, eval_set = split(encoded, spec.eval_split, spec.seed)

    with registry.staging() as out:
        job = TrainJob(spec=spec, base=base, train=train_set, eval=eval_set, output_dir=out, show_progress=show_progress)
        metrics = {**strategy.train(job), "truncated_examples": truncated}
        return registry.publish(
            out,
            name=spec.name,
            kind=strategy.kind,
            base=base.ref,
            strategy=strategy.name,
            dataset={
                "source": spec.dataset,
                "format": dataset_format.name,
                "fingerprint": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
                "examples": len(encoded),
                "train_examples": len(train_set),
                "eval_examples": len(eval_set),
            },
            config=spec.to_dict(),
            metrics=metrics,
            plugin_versions={
                f"strategy:{strategy.name}": plugins.provider(plugins.TRAINING_STRATEGY, strategy.name),
                f"format:{dataset_format.name}": plugins.provider(plugins.DATASET_FORMAT, dataset_format.name),
            },
            base_fingerprint=base.fingerprint,
            base_source=base.source,
            prompt_template=dataset_format.prompt_template,
        )


def _context_length(model_dir) -> int:
    config = json.loads((model_dir / "config.json").read_text())
    return config.get("n_positions") or config.get("max_position_embeddings") or 1024
