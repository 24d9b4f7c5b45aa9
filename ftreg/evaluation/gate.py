"""`ftreg tag REF ALIAS --if-better METRIC`: an alias moves only to a version that measures better.

Both versions are compared on the same data (by fingerprint) and settings; whichever lacks the
number is evaluated first. A successful move keeps what was compared in the alias history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftreg import plugins
from ftreg.contract import MODEL_METRICS, Entry, Ref
from ftreg.errors import ConfigError, UnknownReference
from ftreg.evaluation.evaluate import EvalData, evaluate
from ftreg.registry import Registry


@dataclass(frozen=True)
class Verdict:
    moved: bool
    metric: str
    higher_is_better: bool
    candidate: tuple[str, float | None]  # (ref, value); None when there was nothing to compare against
    holder: tuple[str, float] | None  # the alias's version before, and its value; None when the alias is new
    dataset: str | None
    fingerprint: str | None
    min_delta: float

    @property
    def evidence(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "candidate": {"ref": self.candidate[0], "value": self.candidate[1]},
            "holder": {"ref": self.holder[0], "value": self.holder[1]} if self.holder else None,
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "min_delta": self.min_delta,
        }


def direction(metric: str) -> bool:
    """Whether higher is better for ``metric``, which must be one that can gate."""
    if metric in MODEL_METRICS:
        return MODEL_METRICS[metric]
    found = plugins.metrics()
    if metric not in found:
        raise ConfigError(f"unknown metric {metric!r}; metrics that can gate: {', '.join([*MODEL_METRICS, *found])}")
    return found[metric].higher_is_better


def tag_if_better(registry: Registry, ref: str, alias: str, metric: str, data: EvalData | None, min_delta: float = 0.0, show_progress: bool = False) -> Verdict:
    """Move ``name@alias`` to ``ref`` if it beats the alias's holder on ``metric`` by more than ``min_delta``."""
    if min_delta < 0:
        raise ConfigError(f"`min_delta` must be 0 or more, not {min_delta}")
    higher = direction(metric)
    candidate = registry.resolve(ref)
    try:
        holder: Entry | None = registry.resolve(Ref(candidate.name, alias=alias))
    except UnknownReference:
        holder = None
    if holder is None or holder.ref == candidate.ref:
        verdict = Verdict(holder is None, metric, higher, (candidate.ref, None), None, None, None, min_delta)
        if verdict.moved:
            registry.tag(candidate.ref, alias, evidence=verdict.evidence)
        return verdict
    if data is None:
        candidate_value, holder_value, dataset, fingerprint = _stored_pair(registry, candidate, holder, metric)
    else:
        candidate_value, holder_value = (_measured(registry, entry, data, metric, show_progress) for entry in (candidate, holder))
        dataset, fingerprint = data.reader.reference, data.reader.fingerprint
    gain = candidate_value - holder_value if higher else holder_value - candidate_value
    verdict = Verdict(gain > min_delta, metric, higher, (candidate.ref, candidate_value), (holder.ref, holder_value), dataset, fingerprint, min_delta)
    if verdict.moved:
        registry.tag(candidate.ref, alias, evidence=verdict.evidence)
    return verdict


def _measured(registry: Registry, entry: Entry, data: EvalData, metric: str, show_progress: bool) -> float:
    value = evaluate(registry, entry.ref, data, show_progress).results.get(metric)
    if value is None:
        raise ConfigError(f"{data.reader.source} gives no {metric}: it has no prompts with reference answers to score")
    return value


def _stored_pair(registry: Registry, candidate: Entry, holder: Entry, metric: str) -> tuple[float, float, str, str]:
    """Both versions' stored ``metric`` on the newest data and settings both were evaluated with."""
    held = {(each["fingerprint"], str(each["settings"])): each for each in registry.evaluations(holder) if metric in each["results"]}
    for each in registry.evaluations(candidate):  # newest first
        other = held.get((each["fingerprint"], str(each["settings"])))
        if other is not None and metric in each["results"]:
            return each["results"][metric], other["results"][metric], each["dataset"], each["fingerprint"]
    raise ConfigError(f"{candidate.ref} and {holder.ref} have no {metric} measured on the same data; pass `--dataset` to evaluate them")
