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

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import Example, RecordFormat, RecordProblem, Segment
from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl

ROLES = ("system", "user", "assistant")


class ChatFormat(RecordFormat):
    name = "chat"
    description = 'records of {"messages": [{"role", "content"}]} (OpenAI chat fine-tuning); loss on assistant turns'
    renamable_fields = ("messages",)
    required_fields = ("messages",)
    prompt_template = "<|user|>\n{prompt}\n<|assistant|>\n"
    generation_extras = ("system", "messages")

    def score_record(self, record: Mapping[str, Any]) -> float:
        return 1.0 if isinstance(record.get("messages"), list) else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        messages = record.get("messages") if isinstance(record, Mapping) else None
        if not isinstance(messages, list) or not messages:
            raise RecordProblem('expected an object with a non-empty "messages" list')
        return dialogue_segments([_message(number, message) for number, message in enumerate(messages, start=1)])

    def system_prompt(self, examples: list[Example]) -> str | None:
        """The system message at least half the dialogues open with; None when no one message opens that many.

        A prompt recorded here is sent with every generation by default, so it must be the data's
        convention, not one dialogue's persona.
        """
        counts = Counter(_opening_system(example) for example in examples)
        found, count = counts.most_common(1)[0] if counts else (None, 0)
        return found if count * 2 >= len(examples) else None

    def generation_prompt(
        self, prompt: str | None = None, *, system: str | None = None, input: str | None = None, messages: list[dict[str, str]] | None = None
    ) -> tuple[Segment, ...]:
        """Everything `segments` renders before the reply to the dialogue's last (user) message."""
        dialogue: list = [{"role": "user", "content": prompt}] if messages is None else messages
        if not isinstance(dialogue, list) or not dialogue:
            raise ConfigError('`messages` must be a non-empty list of {"role", "content"} objects')
        last = dialogue[-1]
        role = last.get("role") if isinstance(last, dict) else None
        if role != "user":
            raise ConfigError(f"the last message must be from the user (it is the one to reply to), not {role!r}")
        self._render(dialogue, "the prompt is empty" if messages is None else None)  # numbered as the user numbers them
        if system is not None and system.strip():
            first = dialogue[0]
            if isinstance(first, dict) and first.get("role") == "system":
                raise ConfigError("the messages open with a system message of their own; drop it or `system`")
            dialogue = [{"role": "system", "content": system}, *dialogue]
        return self._render(dialogue, None)

    def _render(self, dialogue: list, problem: str | None) -> tuple[Segment, ...]:
        try:
            segments = dialogue_segments([_message(number, message) for number, message in enumerate([*dialogue, _STAND_IN], start=1)])
        except RecordProblem as error:
            raise ConfigError(problem or str(error)) from None
        return segments[:-1]  # without the stand-in reply: what is left ends with "<|assistant|>\n"


# A reply to render the dialogue up to: `dialogue_segments` renders what precedes an assistant turn.
_STAND_IN = {"role": "assistant", "content": "-"}


def _opening_system(example: Example) -> str | None:
    """The content of the system message an example opens with: the text between "<|system|>\n" and the next turn."""
    head = example.segments[0].text if example.segments else ""
    opening = "<|system|>\n"
    if not head.startswith(opening):
        return None
    body = head[len(opening) :]
    ends = [end for end in (body.find(f"\n<|{role}|>\n") for role in ROLES) if end >= 0]
    return body[: min(ends)] if ends else None


def _message(number: int, message: object) -> tuple[str, str, bool]:
    role = message.get("role") if isinstance(message, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    if role not in ROLES:
        raise RecordProblem(f"message {number}: role must be one of {', '.join(ROLES)}, got {role!r}")
    if not isinstance(content, str) or not content.strip():
        raise RecordProblem(f"message {number}: 'content' must be a non-empty string")
    weight = message.get("weight") if isinstance(message, Mapping) else None
    weight = 1 if weight is None else weight  # Parquet and Arrow give a key other messages have as None
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
