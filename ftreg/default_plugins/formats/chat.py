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

from pathlib import Path

from ftreg.contract.formats import DatasetFormat, Example, Problems, Segment, first_json_record, read_json_records
from ftreg.hookspecs import hookimpl

ROLES = ("system", "user", "assistant")


class ChatFormat(DatasetFormat):
    name = "chat"
    description = 'JSONL of {"messages": [{"role", "content"}]}; loss on assistant turns'
    renamable_fields = ()
    prompt_template = "<|user|>\n{prompt}\n<|assistant|>\n"

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


@hookimpl
def register_dataset_formats(register):
    register(ChatFormat())
