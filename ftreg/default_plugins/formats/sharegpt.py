"""ShareGPT dialogues: records of {"conversations": [{"from", "value"}, ...]}.

Speakers ``human``/``user``, ``gpt``/``assistant`` and ``system`` are rendered with the chat
format's template, so a ShareGPT-trained version generates exactly as a chat-trained one
(``--system`` and ``--messages`` included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordProblem, Segment
from ftreg.default_plugins.formats.chat import ChatFormat, dialogue_segments
from ftreg.hookspecs import hookimpl

SPEAKERS = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class ShareGptFormat(ChatFormat):
    name = "sharegpt"
    description = 'records of {"conversations": [{"from", "value"}]} (human/gpt/system); loss on gpt turns'
    renamable_fields = ("conversations",)
    required_fields = ("conversations",)

    def score_record(self, record: Mapping[str, Any]) -> float:
        return 1.0 if isinstance(record.get("conversations"), list) else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns:
            raise RecordProblem('expected an object with a non-empty "conversations" list')
        return dialogue_segments([_turn(number, turn) for number, turn in enumerate(turns, start=1)])


def _turn(number: int, turn: object) -> tuple[str, str, bool]:
    speaker = turn.get("from") if isinstance(turn, Mapping) else None
    value = turn.get("value") if isinstance(turn, Mapping) else None
    if speaker not in SPEAKERS:
        raise RecordProblem(f"turn {number}: 'from' must be one of {', '.join(SPEAKERS)}, got {speaker!r}")
    if not isinstance(value, str) or not value.strip():
        raise RecordProblem(f"turn {number}: 'value' must be a non-empty string")
    return SPEAKERS[speaker], value.strip(), True


@hookimpl
def register_dataset_formats(register):
    register(ShareGptFormat())
