"""GPT-2 and its LoRA adapters run with torch alone, for a command that loads one model, answers and exits.

Importing transformers' GPT-2 brings torch._dynamo, torch.distributed and transformers' index of
every model with it: about twice as long as importing torch, and longer than a short answer takes
on two CPU cores. ``ftreg generate`` pays that on every call, so it runs the same computation from
the same files here: GPT-2's blocks as transformers computes them (the same operations in the same
order, attention through the same `scaled_dot_product_attention`), a LoRA adapter applied unmerged
as peft applies it, and greedy or sampled decoding with transformers' logits processors (repetition
penalty, then temperature, top-k and top-p). It covers the plain GPT-2 architecture and plain LoRA;
for anything else `load` returns None and the caller uses transformers and peft. The tests hold the
two paths to the same logits and the same answers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

# What a base's config.json and generation_config.json may say for this module to compute exactly
# what transformers would; any other value of these keys (or a different architecture) falls back.
_PLAIN_GPT2 = {
    "model_type": "gpt2",
    "add_cross_attention": False,
    "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False,
    "reorder_and_upcast_attn": False,
}
_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu")
_INERT_GENERATION_KEYS = {"_from_model_config", "bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "use_cache", "output_hidden_states"}
# Keys of adapter_config.json that change what a LoRA adapter computes beyond r, alpha and its A and
# B matrices; an adapter that sets any of them goes through peft.
_LORA_VARIANTS = (
    *("use_dora", "use_qalora", "use_bdlora", "lora_bias", "alora_invocation_tokens"),
    *("exclude_modules", "modules_to_save", "layers_to_transform", "layer_replication", "trainable_token_indices", "target_parameters"),
    *("rank_pattern", "alpha_pattern"),
)
_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
_LORA_KEY = re.compile(r"base_model\.model\.transformer\.(h\.\d+\.(?:attn|mlp)\.c_(?:attn|proj|fc))\.lora_([AB])\.weight")


@dataclass
class Lora:
    a: torch.Tensor  # (r, in)
    b: torch.Tensor  # (out, r)
    scale: float


class LeanGPT2:
    """A GPT-2 checkpoint's weights (Conv1D layout: ``x @ weight + bias``) and optional LoRA updates."""

    def __init__(self, config: dict, weights: dict[str, Any], lora: dict[str, Lora], eos_token_id: int | None):
        self.config = SimpleNamespace(**config)  # `Composed.encode` reads n_positions
        self.weights = weights
        self.lora = lora
        self.eos_token_id = eos_token_id
        self.heads = config["n_head"]
        self.epsilon = config["layer_norm_epsilon"]
        self.activation = config.get("activation_function", "gelu_new")
        self.output = weights.get("lm_head.weight", weights["wte.weight"])  # tied unless the checkpoint says otherwise

    def project(self, name: str, x: Any) -> Any:
        out = torch.addmm(self.weights[f"{name}.bias"], x.view(-1, x.size(-1)), self.weights[f"{name}.weight"])
        out = out.view(*x.shape[:-1], -1)
        lora = self.lora.get(name)
        if lora is not None:
            out = out + F.linear(F.linear(x, lora.a), lora.b) * lora.scale
        return out

    def activate(self, x: Any) -> Any:
        if self.activation == "gelu_new":  # OpenAI's formula, written out as transformers writes it
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
        return F.gelu(x, approximate="tanh" if self.activation == "gelu_pytorch_tanh" else "none")

    def norm(self, name: str, x: Any) -> Any:
        return F.layer_norm(x, x.shape[-1:], self.weights[f"{name}.weight"], self.weights[f"{name}.bias"], self.epsilon)

    def forward(self, ids: Any, cache: list[tuple[Any, Any]]) -> Any:
        """The next-token logits (1, 1, vocabulary) after ``ids`` (1, T), given the keys and values of
        the tokens before them in ``cache``, which is extended in place."""
        start = cache[0][0].size(2) if cache else 0
        x = self.weights["wte.weight"][ids] + self.weights["wpe.weight"][start : start + ids.size(1)]
        for layer in range(self.config.n_layer):
            h = f"h.{layer}"
            q, k, v = self.project(f"{h}.attn.c_attn", self.norm(f"{h}.ln_1", x)).split(x.size(-1), dim=2)
            q, k, v = (t.view(1, t.size(1), self.heads, -1).transpose(1, 2) for t in (q, k, v))
            if layer < len(cache):
                k, v = torch.cat([cache[layer][0], k], dim=2), torch.cat([cache[layer][1], v], dim=2)
                cache[layer] = (k, v)
            else:
                cache.append((k, v))
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=q.size(2) > 1, scale=q.size(-1) ** -0.5)
            x = x + self.project(f"{h}.attn.c_proj", attended.transpose(1, 2).reshape(x.shape))
            hidden = self.activate(self.project(f"{h}.mlp.c_fc", self.norm(f"{h}.ln_2", x)))
            x = x + self.project(f"{h}.mlp.c_proj", hidden)
        return F.linear(self.norm("ln_f", x[:, -1:]), self.output)  # only the last position is ever needed

    def generate(self, ids: list[int], max_new_tokens: int, choose: Callable[[Any, Any], Any]) -> list[int]:
        """Up to ``max_new_tokens`` tokens after ``ids``, each picked by ``choose(seen ids, logits)``, ending at end-of-text."""
        cache: list[tuple[Any, Any]] = []
        seen = torch.tensor([ids])
        step = seen
        new: list[int] = []
        with torch.inference_mode():
            while len(new) < max_new_tokens:
                logits = self.forward(step, cache)[:, -1, :]
                token = int(choose(seen, logits))
                new.append(token)
                if token == self.eos_token_id:
                    break
                step = torch.tensor([[token]])
                seen = torch.cat([seen, step], dim=1)
        return new


def chooser(greedy: bool, temperature: float, top_k: int, top_p: float, repetition_penalty: float) -> Callable[[Any, Any], Any]:
    """Pick the next token as transformers' `generate` does with these settings: its repetition
    penalty, then for sampling its temperature, top-k and top-p warpers and one multinomial draw."""
    def choose(seen: Any, scores: Any) -> Any:
        if repetition_penalty != 1.0:
            score = torch.gather(scores, 1, seen)
            score = torch.where(score < 0, score * repetition_penalty, score / repetition_penalty)
            scores = scores.scatter(1, seen, score)
        if greedy:
            return torch.argmax(scores, dim=-1)
        if temperature != 1.0:
            scores = scores / temperature
        if top_k:
            kth = torch.topk(scores, min(top_k, scores.size(-1)))[0][..., -1, None]
            scores = scores.masked_fill(scores < kth, -float("inf"))
        if top_p < 1.0:
            ordered, order = torch.sort(scores, descending=False)
            drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
            drop[..., -1:] = 0
            scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
        return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)

    return choose


def load(base: Path, adapter: Path | None = None) -> LeanGPT2 | None:
    """The base in ``base`` with the LoRA adapter in ``adapter``, or None where this module would not
    compute exactly what transformers and peft do: another architecture, a LoRA variant, sharded or
    half-precision weights, or an adapter that does not fit the base (peft then says how)."""
    config = _read_json(base / "config.json")
    # Without generation_config.json transformers takes decoding settings from config.json.
    generation = _read_json(base / "generation_config.json")
    if config is None or generation is None or not (base / "model.safetensors").is_file() or not _plain_gpt2(config, generation):
        return None
    # Completions are decoded with the `tokenizers` backend alone, which never tidies spaces before
    # punctuation; a tokenizer configured to would decode differently through transformers.
    if (_read_json(base / "tokenizer_config.json") or {}).get("clean_up_tokenization_spaces"):
        return None
    lora_config = _read_json(adapter / "adapter_config.json") if adapter is not None else {}
    if lora_config is None or (adapter is not None and not (_plain_lora(lora_config) and (adapter / "adapter_model.safetensors").is_file())):
        return None

    # Checkpoints saved by transformers prefix their keys with "transformer."; the Hub's original gpt2 does not.
    weights = {key.removeprefix("transformer."): tensor for key, tensor in load_file(base / "model.safetensors").items()}
    if any(tensor.dtype != torch.float32 for tensor in weights.values()) or (not config.get("tie_word_embeddings", True) and "lm_head.weight" not in weights):
        return None
    if config.get("tie_word_embeddings", True):
        weights.pop("lm_head.weight", None)  # transformers ties the head to the embeddings whatever the file holds
    lora = _lora_updates(load_file(adapter / "adapter_model.safetensors"), lora_config, weights, config["n_layer"]) if adapter is not None else {}
    if lora is None:
        return None
    eos = generation.get("eos_token_id", config.get("eos_token_id"))
    if eos is not None and not isinstance(eos, int):  # several end tokens
        return None
    return LeanGPT2(config, weights, lora, eos)


def _plain_gpt2(config: dict, generation: dict) -> bool:
    return (
        all(key in config for key in ("n_head", "n_layer", "n_positions", "layer_norm_epsilon"))
        and all(config.get(key, plain) == plain for key, plain in _PLAIN_GPT2.items())
        and config.get("activation_function", "gelu_new") in _ACTIVATIONS
        and config.get("dtype", config.get("torch_dtype", "float32")) == "float32"
        and set(generation) <= _INERT_GENERATION_KEYS | {"output_attentions"}
        and not generation.get("output_attentions") and not config.get("output_attentions")  # attention weights need the eager path
    )


def _plain_lora(config: dict) -> bool:
    variants = [key for key in _LORA_VARIANTS if config.get(key)]
    others = [key for key, value in config.items() if key.endswith("_config") and value]  # eva, corda, loftq, arrow...
    # PiSSA, OLoRA, LoftQ and the like rewrite the base weights when peft loads the adapter.
    plain_init = config.get("init_lora_weights", True) in (True, False, "gaussian")
    return config.get("peft_type") == "LORA" and config.get("bias", "none") == "none" and plain_init and not variants and not others


def _lora_updates(tensors: dict[str, Any], config: dict, weights: dict[str, Any], layers: int) -> dict[str, Lora] | None:
    """The adapter's A and B matrices by the GPT-2 module they update; None unless they are exactly
    the pairs peft would create on this base (every targeted module, shapes that fit)."""
    targets = config.get("target_modules")
    if not isinstance(targets, list) or not config.get("fan_in_fan_out"):
        return None
    modules = [f"h.{layer}.{name}" for layer in range(layers) for name in _CONV1D]
    expected = {module for module in modules if any(module == target or module.endswith(f".{target}") for target in targets)}
    if not expected:  # peft refuses an adapter that targets nothing
        return None
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        match = _LORA_KEY.fullmatch(key)
        if match is None:
            return None
        pairs.setdefault(match[1], {})[match[2]] = tensor
    if set(pairs) != expected or any(set(pair) != {"A", "B"} for pair in pairs.values()):
        return None
    r, alpha = config["r"], config["lora_alpha"]
    for module, pair in pairs.items():
        fan_in, fan_out = weights[f"{module}.weight"].shape
        if pair["A"].shape != (r, fan_in) or pair["B"].shape != (fan_out, r) or {pair["A"].dtype, pair["B"].dtype} != {torch.float32}:
            return None
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    return {module: Lora(pair["A"], pair["B"], scale) for module, pair in pairs.items()}


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
