"""How a model's prompts are rendered: the way its training data was, from what its version records.

A version records its dataset format, its `prompt_template` and the `system_prompt` its data used;
that is enough to render a plain prompt, a system message, an Alpaca input or a whole dialogue
exactly as training rendered them, without reading the data again and before any weights load
(so a misuse fails in milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftreg import plugins
from ftreg.contract import DatasetFormat, Entry, Segment
from ftreg.errors import ConfigError, FtregError, UnknownPlugin
from ftreg.registry import Registry

# What each extra of `Prompter.segments` is, for messages.
EXTRAS = {"system": "system prompt", "input": "input section", "messages": "dialogue of messages"}
# How `Prompter.render` writes the end-of-text token that follows an earlier reply (GPT-2's).
EOS_TEXT = "<|endoftext|>"


@dataclass(frozen=True)
class Prompter:
    """Renders prompts for one model: as its version's training data was, or as a named format's."""

    template: str = "{prompt}"  # how a plain prompt is wrapped ("{prompt}" marks it)
    format: str | None = None  # the dataset format whose rendering `system`, `input` and `messages` use
    system_prompt: str | None = None  # the recorded system message: the default of `system`
    model: str = "the model"  # what is rendered for, in messages: "support-v1"

    def segments(
        self,
        prompt: str | None = None,
        *,
        raw: bool = False,
        system: str | None = None,
        input: str | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> tuple[Segment, ...]:
        """What generation tokenizes, as training does: each segment on its own, the end-of-text token after those marked ``eos``.

        ``system`` replaces the recorded system prompt ("" for none); ``input`` fills an Alpaca
        input section; ``messages`` (a list of {"role", "content"}, the last from the user) is a
        whole dialogue instead of ``prompt``. ``raw`` sends ``prompt`` as it is.
        """
        given = [name for name, value in (("system", system), ("input", input), ("messages", messages)) if value is not None]
        if raw:
            if given:
                raise ConfigError(f"`raw` sends the prompt as it is, without a template; it takes no `{given[0]}`")
            if not prompt:
                raise ConfigError("the prompt is empty (and `raw` sends it without a template)")
            return (Segment(prompt, False),)
        if (prompt is None) == (messages is None):
            raise ConfigError("pass a prompt or `messages` (a dialogue), not both" if prompt is not None else "pass a prompt or `messages` (a dialogue)")
        dataset_format = self._format(given[0] if given else None) if given or self.system_prompt else None
        for name in given:
            if dataset_format is None or name not in dataset_format.generation_extras:
                raise ConfigError(self._refusal(name))
        if system is None and self.system_prompt and dataset_format is not None and not _opens_with_system(messages):
            system = self.system_prompt  # a dialogue's own system message wins over the recorded one
        without_system = system is not None and not system.strip()  # "": no system message, not even the recorded one
        if without_system:
            system = None
        if dataset_format is None or (system is None and input is None and messages is None and not without_system):
            assert prompt is not None
            return (Segment(self.template.replace("{prompt}", prompt), False),)
        extras: dict[str, Any] = {name: value for name, value in (("system", system), ("input", input), ("messages", messages)) if value is not None}
        return dataset_format.generation_prompt(prompt, **extras)

    def render(
        self,
        prompt: str | None = None,
        *,
        raw: bool = False,
        system: str | None = None,
        input: str | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> str:
        """`segments` as one text, with ``<|endoftext|>`` after each earlier reply of a dialogue."""
        rendered = self.segments(prompt, raw=raw, system=system, input=input, messages=messages)
        return "".join(segment.text + (EOS_TEXT if segment.eos else "") for segment in rendered)

    def _format(self, extra: str | None) -> DatasetFormat | None:
        """The format that renders extras; None when there is none (or, for the recorded system prompt alone, it is not installed)."""
        if self.format is None:
            return None
        try:
            return plugins.get_dataset_format(self.format)
        except UnknownPlugin:
            if extra is None:
                return None  # the recorded template already holds the recorded system prompt
            raise ConfigError(f"{self.model} was trained on format {self.format!r}, which is not installed here; `{extra}` needs it") from None

    def _refusal(self, extra: str) -> str:
        takers = sorted(name for name, dataset_format in plugins.dataset_formats().items() if extra in dataset_format.generation_extras)
        what = EXTRAS[extra]
        has = f"renders prompts as format {self.format!r}, which has no {what}" if self.format else f"has no dataset format to render a {what} with"
        hint = f": `{extra}` is for versions trained on {' or '.join(takers)} data (or pass `prompt_format` {takers[0]})" if takers else ""
        return f"{self.model} {has}{hint}"


def _opens_with_system(messages: object) -> bool:
    return isinstance(messages, list) and bool(messages) and isinstance(messages[0], dict) and messages[0].get("role") == "system"


def trained_format(entry: Entry) -> str | None:
    """The dataset format a version was trained on, as its record names it."""
    dataset = entry.manifest.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("format"), str):
        return dataset["format"]
    recorded = entry.config.get("format")
    return recorded if isinstance(recorded, str) else None


def prompter(registry: Registry, adapter: str | None = None, base: str | None = None, prompt_format: str | None = None) -> Prompter:
    """How ``adapter`` (or a bare ``base``) renders prompts; ``prompt_format`` names a format to render with instead.

    Reads only the registry's records: nothing is loaded.
    """
    if adapter is None and base is None:
        raise FtregError("pass an `adapter`, a `base`, or both")
    entry = registry.resolve(adapter) if adapter else None
    trained = trained_format(entry) if entry else None
    recorded = entry.manifest.get("system_prompt") if entry else None
    model = entry.ref if entry else str(base)
    if prompt_format:
        chosen = plugins.get_dataset_format(prompt_format)
        return Prompter(chosen.prompt_template, chosen.name, recorded if chosen.name == trained else None, model)
    if entry is None:
        return Prompter(model=model)
    return Prompter(entry.manifest.get("prompt_template") or "{prompt}", trained, recorded, model)
