"""The embedded default base: a tiny GPT-2 made offline, reproducibly, from text every Python has.

No weights are downloaded. A byte-level BPE tokenizer is trained with `tokenizers` and a
`GPT2LMHeadModel` (Conv1D layers, learned positions: the real architecture, only smaller) is
pre-trained from scratch on the documentation CPython ships. The result is published as the
checkpoint ``tiny-gpt2`` with its recipe, so `--base` resolution, fingerprints and generation
treat it exactly like ``gpt2`` from the Hub.

A base that adapters can learn from takes ~15 CPU-minutes to pre-train, more than a quickstart
should wait, so the weights built by `BaseRecipe()` ship in ``ftreg/resources/tiny-gpt2`` (made by
``scripts/build_embedded_base.py``) and ``ftreg base init`` publishes those. ``ftreg base init
--rebuild`` runs the recipe itself; it is deterministic for a given seed, Python version (the
corpus is the installation's own documentation) and thread count.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

from filelock import FileLock

from ftreg.engines.optim import adamw, warmup_cosine
from ftreg.registry import Entry, Registry

EMBEDDED_BASE_NAME = "tiny-gpt2"
END_OF_TEXT = "<|endoftext|>"  # GPT-2's only special token: document separator, BOS, EOS and padding


@dataclass(frozen=True)
class BaseRecipe:
    vocab_size: int = 4096
    n_positions: int = 256
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    block_size: int = 128
    batch_size: int = 16
    # About 15 minutes on two CPU cores, which is why the result ships with ftreg (see below).
    steps: int = 2000
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    seed: int = 1234


# Standard-library folders whose docstrings are tests or GUI demos rather than prose.
_SKIPPED_STDLIB = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "tkinter"}


@functools.cache
def corpus_documents() -> tuple[str, ...]:
    """English that every Python installation carries: pydoc's topic texts and stdlib docstrings.

    Docstrings are read with `ast`, never by importing modules (some have side effects).
    """
    import ast
    import sysconfig
    from pydoc_data.topics import topics

    documents = [topics[key] for key in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if _SKIPPED_STDLIB.intersection(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node)
                if docstring and len(docstring) >= 80:  # one-liners teach little but names
                    documents.append(docstring)
    return tuple(documents)


SHIPPED = files("ftreg.resources") / "tiny-gpt2"
BUILD_INFO = "build.json"  # how the shipped weights were made: recipe, metrics, corpus, versions


def ensure_embedded_base(registry: Registry) -> Entry:
    """The embedded base from the registry; the shipped one is published first if there is none."""
    registry.home.mkdir(parents=True, exist_ok=True)
    # Two commands starting at once on a fresh registry must publish it once, not twice.
    with FileLock(registry.home / "embedded-base.lock"):
        if registry.exists(EMBEDDED_BASE_NAME):
            return registry.resolve(EMBEDDED_BASE_NAME)
        build = json.loads(SHIPPED.joinpath(BUILD_INFO).read_text())
        with registry.staging() as out:
            for file in SHIPPED.iterdir():
                if file.name != BUILD_INFO and file.is_file():
                    (out / file.name).write_bytes(file.read_bytes())
            return _publish(registry, out, build, shipped=True)


def build_embedded_base(registry: Registry, recipe: BaseRecipe, show_progress: bool = True) -> Entry:
    """Pre-train a base from ``recipe`` and publish it as the next version of tiny-gpt2."""
    with registry.staging() as out:
        return _publish(registry, out, build(recipe, out, show_progress), shipped=False)


def build(recipe: BaseRecipe, out: Path, show_progress: bool = True) -> dict:
    """Pre-train into ``out``; returns the build record (recipe, metrics, corpus, versions)."""
    import platform

    import tokenizers
    import torch
    import transformers

    metrics = pretrain(recipe, out, show_progress)
    return {
        "recipe": asdict(recipe),
        "metrics": metrics,
        "corpus": {"source": "pydoc_data.topics + standard-library docstrings", "python": platform.python_version()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
    }


def _publish(registry: Registry, out: Path, build: dict, shipped: bool) -> Entry:
    return registry.publish(
        out,
        name=EMBEDDED_BASE_NAME,
        kind="checkpoint",
        strategy="embedded-base",
        dataset=build["corpus"],
        config=build["recipe"],
        metrics=build["metrics"],
        build_versions=build["versions"],
        shipped=shipped,
    )


def train_tokenizer(documents: tuple[str, ...], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined,unused-ignore]  # a lazy alias in transformers 5, missing from its type information

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknown tokens
        show_progress=False,
    )
    bpe.train_from_iterator(documents, trainer=trainer)
    return GPT2TokenizerFast(tokenizer_object=bpe, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, unk_token=END_OF_TEXT)


def pretrain(recipe: BaseRecipe, out: Path, show_progress: bool = True) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    documents = corpus_documents()
    tokenizer = train_tokenizer(documents, recipe.vocab_size)
    eot = tokenizer.eos_token_id
    ids = [token for document in documents for token in (*tokenizer.backend_tokenizer.encode(document).ids, eot)]
    data = torch.tensor(ids, dtype=torch.long)
    # The last 5% of the corpus never trains: its loss says whether the base learned English or memorised.
    n_eval = len(data) // 20
    train_data, eval_data = data[:-n_eval], data[-n_eval:]

    torch.manual_seed(recipe.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
    )
    model = GPT2LMHeadModel(config)
    optimizer = adamw(model, recipe.learning_rate, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(recipe.warmup_steps, recipe.steps))
    sampler = torch.Generator().manual_seed(recipe.seed)

    model.train()
    progress = tqdm(range(recipe.steps), desc=f"Pre-training {EMBEDDED_BASE_NAME}", disable=not show_progress, unit="step")
    for _ in progress:
        # Random windows rather than epochs: every step sees fresh context boundaries.
        starts = torch.randint(len(train_data) - recipe.block_size, (recipe.batch_size,), generator=sampler)
        batch = torch.stack([train_data[s : s + recipe.block_size] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)

    model.eval()
    with torch.no_grad():
        blocks = eval_data[: len(eval_data) // recipe.block_size * recipe.block_size].view(-1, recipe.block_size)
        eval_loss = sum(model(input_ids=b[None], labels=b[None]).loss.item() for b in blocks) / len(blocks)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "train_loss": round(loss.item(), 4),
        "eval_loss": round(eval_loss, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_tokens": len(train_data),
    }
