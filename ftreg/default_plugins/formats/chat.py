"""Chat dialogues: JSONL (or a JSON array) of {"messages": [{"role", "content"}, ...]}.

GPT-2 has no chat template, so ftreg uses this plain-text one; loss on assistant turns only,
each followed by the end-of-text token so the model learns where a reply stops::

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
from pathlib import Path

from ftreg.contract.formats import DatasetFormat, Example, Problems, Segment, first_json_record, read_json_records
from ftreg.errors import ConfigError
from ftreg.hookspecs import hookimpl

ROLES = ("system", "user", "assistant")


class ChatFormat(DatasetFormat):
    name = "chat"
    description = 'JSONL of {"messages": [{"role", "content"}]}; loss on assistant turns'
    renamable_fields = ()
    prompt_template = "<|user|>\n{prompt}\n<|assistant|>\n"
    generation_extras = ("system", "messages")

    def score(self, path: Path, sample: str) -> float:
        record = first_json_record(sample)
        return 1.0 if isinstance(record, dict) and isinstance(record.get("messages"), list) else 0.0

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        problems = Problems(path)
        examples = []
        for line, record in read_json_records(path):
            segments = self._segments(record, problems, line)
            if segments:
                examples.append(Example(segments, line))
        problems.raise_if_any()
        return examples

    def _segments(self, record, problems: Problems, line: int) -> tuple[Segment, ...] | None:
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            problems.add('expected an object with a non-empty "messages" list', line)
            return None
        segments: list[Segment] = []
        pending = ""  # untrained text accumulated until the next assistant turn
        for number, message in enumerate(messages, start=1):
            role = message.get("role") if isinstance(message, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if role not in ROLES:
                problems.add(f"message {number}: role must be one of {', '.join(ROLES)}, got {role!r}", line)
                return None
            if not isinstance(content, str) or not content.strip():
                problems.add(f"message {number}: 'content' must be a non-empty string", line)
                return None
            if role == "assistant":
                segments += [Segment(pending + "<|assistant|>\n", False), Segment(content.strip(), True, eos=True)]
                pending = "\n"
            else:
                pending += f"<|{role}|>\n{content.strip()}\n"
        if not segments:
            problems.add("the dialogue has no assistant message to learn from", line)
            return None
        return tuple(segments)

    def system_prompt(self, examples: list[Example]) -> str | None:
        """The most common first system message of the dialogues (None when most open without one)."""
        counts = Counter(_opening_system(example) for example in examples)
        return counts.most_common(1)[0][0] if counts else None

    def generation_prompt(
        self, prompt: str | None = None, *, system: str | None = None, input: str | None = None, messages: list[dict[str, str]] | None = None
    ) -> tuple[Segment, ...]:
        """Everything `_segments` renders before the reply to the dialogue's last (user) message."""
        dialogue: list = [{"role": "user", "content": prompt}] if messages is None else messages
        if not isinstance(dialogue, list) or not dialogue:
            raise ConfigError('`messages` must be a non-empty list of {"role", "content"} objects')
        last = dialogue[-1]
        role = last.get("role") if isinstance(last, dict) else None
        if role != "user":
            raise ConfigError(f"the last message must be from the user (it is the one to reply to), not {role!r}")
        problems = _Listed(Path("messages"))
        if self._segments({"messages": [*dialogue, _STAND_IN]}, problems, 0) is None:  # numbered as the user numbers them
            raise ConfigError(problems.messages[0] if messages is not None else "the prompt is empty")
        if system is not None and system.strip():
            first = dialogue[0]
            if isinstance(first, dict) and first.get("role") == "system":
                raise ConfigError("the messages open with a system message of their own; drop it or `system`")
            dialogue = [{"role": "system", "content": system}, *dialogue]
        segments = self._segments({"messages": [*dialogue, _STAND_IN]}, problems, 0)
        assert segments is not None  # checked above, and a non-empty system message is valid
        return segments[:-1]  # without the stand-in reply: what is left ends with "<|assistant|>\n"


# A reply to render the dialogue up to: `_segments` renders what precedes an assistant turn.
_STAND_IN = {"role": "assistant", "content": "-"}


class _Listed(Problems):
    """Problems as bare messages, without a file and line: for a dialogue given at generation."""

    def add(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.messages.append(message)


def _opening_system(example: Example) -> str | None:
    """The content of the system message an example opens with: the text between "<|system|>\n" and the next turn."""
    head = example.segments[0].text if example.segments else ""
    opening = "<|system|>\n"
    if not head.startswith(opening):
        return None
    body = head[len(opening) :]
    ends = [end for end in (body.find(f"\n<|{role}|>\n") for role in ROLES) if end >= 0]
    return body[: min(ends)] if ends else None


@hookimpl
def register_dataset_formats(register):
    register(ChatFormat())
