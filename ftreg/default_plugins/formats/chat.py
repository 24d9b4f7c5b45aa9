"""Chat dialogues: records of {"messages": [{"role", "content"}, ...]}, as in OpenAI's chat fine-tuning JSONL.

GPT-2 has no chat template, so ftreg uses this plain-text one; loss on assistant turns only
(except those marked ``"weight": 0``), each followed by the end-of-text token so the model
learns where a reply stops::

    <|system|>
    You are Northwind's support assistant.
    <|user|>
    Where is my order?
    <|assistant|>
    It ships today.<|endoftext|>
    <|user|>
    ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordFormat, RecordProblem, Segment
from ftreg.hookspecs import hookimpl

ROLES = ("system", "user", "assistant")


class ChatFormat(RecordFormat):
    name = "chat"
    description = 'records of {"messages": [{"role", "content"}]} (OpenAI chat fine-tuning); loss on assistant turns'
    renamable_fields = ("messages",)
    required_fields = ("messages",)
    prompt_template = "<|user|>\n{prompt}\n<|assistant|>\n"

    def score_record(self, record: Mapping[str, Any]) -> float:
        return 1.0 if isinstance(record.get("messages"), list) else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        messages = record.get("messages") if isinstance(record, Mapping) else None
        if not isinstance(messages, list) or not messages:
            raise RecordProblem('expected an object with a non-empty "messages" list')
        return dialogue_segments([_message(number, message) for number, message in enumerate(messages, start=1)])


def _message(number: int, message: object) -> tuple[str, str, bool]:
    role = message.get("role") if isinstance(message, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    if role not in ROLES:
        raise RecordProblem(f"message {number}: role must be one of {', '.join(ROLES)}, got {role!r}")
    if not isinstance(content, str) or not content.strip():
        raise RecordProblem(f"message {number}: 'content' must be a non-empty string")
    weight = message.get("weight", 1) if isinstance(message, Mapping) else 1
    if weight not in (0, 1):
        raise RecordProblem(f"message {number}: 'weight' must be 0 or 1, got {weight!r}")
    return role, content.strip(), weight == 1


def dialogue_segments(turns: list[tuple[str, str, bool]]) -> tuple[Segment, ...]:
    """The chat template's segments for ``(role, content, trains)`` turns: assistant turns that train carry loss."""
    segments: list[Segment] = []
    pending = ""  # untrained text accumulated until the next trained assistant turn
    for role, content, trains in turns:
        if role == "assistant":
            if trains:
                segments += [Segment(pending + "<|assistant|>\n", False), Segment(content, True, eos=True)]
                pending = "\n"
            else:
                pending += f"<|assistant|>\n{content}<|endoftext|>\n"
        else:
            pending += f"<|{role}|>\n{content}\n"
    if not segments:
        raise RecordProblem("the dialogue has no assistant message to learn from")
    return tuple(segments)


@hookimpl
def register_dataset_formats(register):
    register(ChatFormat())
