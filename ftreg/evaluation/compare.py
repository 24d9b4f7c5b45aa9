"""`ftreg compare`: versions evaluated on the same data, their numbers side by side, and a few answers next to the references."""

from __future__ import annotations

from ftreg import plugins
from ftreg.contract import MODEL_METRICS
from ftreg.engines.metrics import LOSS_CURVE
from ftreg.evaluation.comparison import Comparison, MetricRow, Sample
from ftreg.evaluation.evaluate import EvalData, evaluate, split_answer
from ftreg.registry import Registry

INFORMATIONAL = ("answer_words",)  # measured, shown, never ranked


def compare(registry: Registry, refs: list[str], data: EvalData, samples: int = 3, show_progress: bool = False) -> Comparison:
    entries = [registry.resolve(ref) for ref in refs]  # every reference checked before the first evaluation
    evaluations = [evaluate(registry, entry.ref, data, show_progress) for entry in entries]
    directions: dict[str, bool | None] = {**MODEL_METRICS, **{name: metric.higher_is_better for name, metric in plugins.metrics().items()}}
    directions.update(dict.fromkeys(INFORMATIONAL))
    rows = [MetricRow(name, higher, [evaluation.results.get(name) for evaluation in evaluations]) for name, higher in directions.items()
            if any(name in evaluation.results for evaluation in evaluations)]
    questions = [question for example in data.examples if (question := split_answer(example)) is not None][:samples]
    shown = [Sample("".join(segment.text for segment in segments), reference, [evaluation.answers[index] for evaluation in evaluations])
             for index, (segments, reference) in enumerate(questions)]
    curves = [(entry.path / LOSS_CURVE).read_bytes() if LOSS_CURVE in entry.manifest["files"] else None for entry in entries]
    return Comparison(data.reader.reference, data.reader.fingerprint, [entry.ref for entry in entries], rows, shown, curves, data.settings)
