"""A base's tokenizer for encoding, loaded with `tokenizers` alone.

Training, `data check` and generation encode text through `load_encoder`, so they cannot
disagree about ids. It reads the base's ``tokenizer.json`` with the `tokenizers` library, which
is what transformers' fast tokenizers run underneath, in milliseconds instead of the seconds
importing transformers takes; a base without one gets transformers' tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class Encoder:
    """The part of a transformers tokenizer ftreg encodes with: ``encoder(texts, add_special_tokens=False)``, ``eos_token_id``, ``decode``."""

    def __init__(self, backend: Any, eos_token_id: int):
        self.backend = backend
        self.eos_token_id = eos_token_id

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
        return {"input_ids": [encoding.ids for encoding in self.backend.encode_batch(texts, add_special_tokens=add_special_tokens)]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)


def load_encoder(path: Path) -> Any:
    """The encoder of the base at ``path``: an `Encoder` over its tokenizer.json, else transformers' tokenizer."""
    found = _fast_encoder(path)
    if found is not None:
        return found
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _fast_encoder(path: Path) -> Encoder | None:
    config_file, tokenizer_file = path / "tokenizer_config.json", path / "tokenizer.json"
    if not (config_file.is_file() and tokenizer_file.is_file()):
        return None
    eos = json.loads(config_file.read_text()).get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    if not isinstance(eos, str):
        return None
    from tokenizers import Tokenizer

    backend = Tokenizer.from_file(str(tokenizer_file))
    backend.no_truncation()  # as transformers sets it for a call without truncation or padding
    backend.no_padding()
    eos_id = backend.token_to_id(eos)
    return Encoder(backend, eos_id) if eos_id is not None else None
