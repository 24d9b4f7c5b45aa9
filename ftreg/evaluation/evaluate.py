"""`ftreg eval`: one version measured on a dataset, the result stored with it.

Loss counts exactly the tokens training puts loss on (the same `encode_stream`), summed over the
dataset and divided by their number; perplexity is its exponential. An example's last trained
segment is its reference answer and what precedes it the prompt, rendered and tokenized as
training did, so adapters, checkpoints and bare bases alike are prompted with the data's own
template. Answers are greedy, to a recorded length, and every registered metric scores them.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ftreg import plugins
from ftreg.contract import IGNORE_INDEX, Entry, Example
from ftreg.datasets.encoding import encode_stream, segment_ids
from ftreg.datasets.loading import DatasetReader, open_dataset
from ftreg.errors import DatasetError
from ftreg.inference.compose import Composed, compose
from ftreg.inference.options import GenerationOptions
from ftreg.registry import Registry

DEFAULT_MAX_NEW_TOKENS = 64
BATCH = 8  # examples per forward pass: enough to keep two cores busy on the embedded base


@dataclass(frozen=True)
class Evaluation:
    ref: str
    dataset: str  # as the user named it
    fingerprint: str  # the data's content: results hold for exactly this data
    settings: dict[str, Any]  # format, limit, max_new_tokens: with the fingerprint, what the result is stored under
    results: dict[str, float]
    answers: list[str]  # the greedy answers, in the dataset's order of answerable examples
    cached: bool  # read from the registry, not measured now


@dataclass(frozen=True)
class Case:
    """One example as a question: its prompt's ids (as training tokenized them) and its reference answer."""

    prompt: str
    prompt_ids: list[int]
    reference: str


@dataclass(frozen=True)
class EvalData:
    reader: DatasetReader
    examples: list[Example]
    settings: dict[str, Any]

    @property
    def references(self) -> list[str]:
        return [question[1] for example in self.examples if (question := split_answer(example)) is not None]


def open_eval_data(dataset: str, format_name: str | None = None, limit: int | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> EvalData:
    """The data and the settings an evaluation is stored under; checked before any weights load."""
    if limit is not None and limit < 1:
        raise DatasetError(f"`limit` must be at least 1, not {limit}")
    if max_new_tokens < 1:
        raise DatasetError(f"`max_new_tokens` must be at least 1, not {max_new_tokens}")
    reader = open_dataset(dataset, format_name)
    examples = list(itertools.islice(reader.examples([]), limit))
    if not examples:
        raise DatasetError(f"{dataset}: no examples to evaluate on")
    return EvalData(reader, examples, {"format": reader.format.name, "limit": limit, "max_new_tokens": max_new_tokens})


def evaluate(registry: Registry, ref: str, data: EvalData, show_progress: bool = False) -> Evaluation:
    """``ref`` measured on ``data``: read from the registry when this version, data and settings were
    measured before (scoring any metric registered since from the stored answers), measured and stored otherwise."""
    entry = registry.resolve(ref)
    fingerprint = data.reader.fingerprint
    metrics = plugins.metrics()
    stored = registry.evaluation(entry, fingerprint, data.settings)
    if stored is not None:
        missing = {name: metric for name, metric in metrics.items() if name not in stored["results"]}
        results = {**stored["results"], **scores(missing, stored["answers"], data.references)}
        if missing:
            registry.record_evaluation(entry, stored["dataset"], fingerprint, data.settings, results, stored["answers"])
        return Evaluation(entry.ref, stored["dataset"], fingerprint, data.settings, results, stored["answers"], cached=True)
    return _measure(registry, entry, data, show_progress)


def _measure(registry: Registry, entry: Entry, data: EvalData, show_progress: bool) -> Evaluation:
    from tqdm.auto import tqdm

    model = compose(registry, entry.ref)
    cases = [_case(model, example) for example in data.examples]
    answerable = [case for case in cases if case is not None]
    with tqdm(total=len(data.examples) + len(answerable), desc=f"Evaluating {entry.ref}", unit="example", disable=not show_progress) as progress:
        loss_sum, loss_tokens = _token_loss(model, data.examples, progress.update)
        answers = greedy_answers(model, answerable, data.settings["max_new_tokens"], progress.update)
    if loss_tokens == 0:
        raise DatasetError(f"{data.reader.source}: no example keeps a loss-carrying token within the context of {entry.ref}")
    loss = loss_sum / loss_tokens
    results: dict[str, float] = {"loss": loss, "perplexity": math.exp(min(loss, 700)), "examples": len(data.examples), "loss_tokens": loss_tokens}
    if answerable:
        results["answer_words"] = statistics.fmean(len(answer.split()) for answer in answers)
        results.update(scores(plugins.metrics(), answers, [case.reference for case in answerable]))
    results = {key: round(float(value), 6) for key, value in results.items()}
    registry.record_evaluation(entry, data.reader.reference, data.reader.fingerprint, data.settings, results, answers)
    return Evaluation(entry.ref, data.reader.reference, data.reader.fingerprint, data.settings, results, answers, cached=False)


def scores(metrics: dict[str, Any], answers: list[str], references: list[str]) -> dict[str, float]:
    if not answers:
        return {}
    return {name: round(float(metric.score(answers, references)), 6) for name, metric in metrics.items()}


def split_answer(example: Example) -> tuple[tuple[Any, ...], str] | None:
    """The segments before the example's last trained one (the prompt) and that one's text (the
    reference); None when nothing untrained precedes it (plain text has no question to ask)."""
    last = max((index for index, segment in enumerate(example.segments) if segment.trains), default=None)
    if last is None or all(segment.trains for segment in example.segments[:last]):
        return None
    return example.segments[:last], example.segments[last].text.strip()


def _case(model: Composed, example: Example) -> Case | None:
    question = split_answer(example)
    if question is None:
        return None
    segments, reference = question
    ids = [token for ids in segment_ids(segments, model.encoder) for token in ids]
    return Case("".join(segment.text for segment in segments), ids, reference)


def _batches(items: list[Any], length: Any) -> Iterator[list[Any]]:
    """``items`` in batches of similar length (less padding), each batch in its original order of indices."""
    order = sorted(range(len(items)), key=lambda index: length(items[index]))
    for start in range(0, len(order), BATCH):
        yield order[start : start + BATCH]


def _token_loss(model: Composed, examples: list[Example], advance: Any) -> tuple[float, int]:
    """The summed cross-entropy over loss-carrying tokens, and their number."""
    import torch

    context = _context(model)
    encoded = [each for _, each, _ in encode_stream(examples, model.encoder, context)]
    advance(len(examples) - sum(each is not None for each in encoded))
    kept = [each for each in encoded if each is not None]
    eos = model.tokenizer.eos_token_id
    total, tokens = 0.0, 0
    for indices in _batches(kept, lambda each: len(each.input_ids)):
        rows = [kept[index] for index in indices]
        width = max(len(row.input_ids) for row in rows)
        input_ids = torch.tensor([row.input_ids + [eos] * (width - len(row.input_ids)) for row in rows], device=model.model.device)
        labels = torch.tensor([row.labels + [IGNORE_INDEX] * (width - len(row.labels)) for row in rows], device=model.model.device)
        attention_mask = torch.tensor([[1] * len(row.input_ids) + [0] * (width - len(row.input_ids)) for row in rows], device=model.model.device)
        with torch.no_grad():
            logits = model.model(input_ids=input_ids, attention_mask=attention_mask).logits
        # A token is predicted from the ones before it: position i's logits score label i + 1.
        shifted = labels[:, 1:]
        total += torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), shifted.flatten(), ignore_index=IGNORE_INDEX, reduction="sum").item()
        tokens += int((shifted != IGNORE_INDEX).sum())
        advance(len(rows))
    return total, tokens


def greedy_answers(model: Composed, cases: list[Case], max_new_tokens: int, advance: Any) -> list[str]:
    """Each case's greedy answer, generated in left-padded batches so every row continues its own prompt."""
    import torch

    options = GenerationOptions(greedy=True, max_new_tokens=max_new_tokens, repetition_penalty=1.0)
    room = _context(model) - max_new_tokens  # a longer prompt keeps its end: the question is last
    eos = model.tokenizer.eos_token_id
    answers: list[str] = [""] * len(cases)
    for indices in _batches(cases, lambda case: len(case.prompt_ids)):
        prompts = [cases[index].prompt_ids[-room:] for index in indices]
        width = max(len(ids) for ids in prompts)
        input_ids = torch.tensor([[eos] * (width - len(ids)) + ids for ids in prompts], device=model.model.device)
        attention_mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=model.model.device)
        with torch.no_grad():
            output = model.model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                                          max_new_tokens=max_new_tokens, pad_token_id=eos, repetition_penalty=1.0)
        for index, row in zip(indices, output):
            answers[index] = model.completion(row[width:].tolist(), options, ()).text
        advance(len(indices))
    return answers


def _context(model: Composed) -> int:
    config = model.model.config
    return int(getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or 1024)
