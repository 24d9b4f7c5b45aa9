"""The embedded default base: a tiny GPT-2 made offline, reproducibly, from text installing ftreg brings.

No weights are downloaded. A byte-level BPE tokenizer is trained with `tokenizers` and a
`GPT2LMHeadModel` (Conv1D layers, learned positions: the real architecture, only smaller) is
pre-trained from scratch on the docstrings of the standard library and of ftreg's dependencies,
then briefly on the bundled support data's training split. The result is published as the
checkpoint ``tiny-gpt2`` with its recipe, so `--base` resolution, fingerprints and generation
treat it exactly like ``gpt2`` from the Hub.

A base that adapters can learn from takes ~35 minutes on two CPU cores to pre-train, more than a
quickstart should wait, so the weights built by `BaseRecipe()` ship in ``ftreg/resources/tiny-gpt2``
(made by ``scripts/build_embedded_base.py``) and ``ftreg base init`` publishes those. ``ftreg base
init --rebuild`` runs the recipe itself; it is deterministic for a given seed, set of installed
distributions (the corpus is their documentation) and thread count.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
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
    vocab_size: int = 8192
    n_positions: int = 256
    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 4
    # Under one pass over the corpus there is nothing to regularise against, and dropout would
    # only slow learning; fine-tuning strategies bring their own (LoRA dropout, for one).
    dropout: float = 0.0
    block_size: int = 128
    batch_size: int = 16
    # About 32 minutes on two CPU cores (35 with the phase below and reading the corpus),
    # which is why the result ships with ftreg (see below).
    steps: int = 1800
    learning_rate: float = 2e-3
    warmup_steps: int = 50
    # Then a short second phase on the bundled support data's training split (never its held-out
    # questions), half of every batch still docstrings: the base meets the conversational English
    # of the job it ships for, which docstrings never speak.
    domain_steps: int = 240
    domain_learning_rate: float = 1e-3
    seed: int = 1234


# Standard-library folders whose docstrings are tests or GUI demos rather than prose.
_SKIPPED_STDLIB = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "tkinter"}


def corpus_documents() -> tuple[str, ...]:
    """English that installing ftreg brings: pydoc's topics and the docstrings of the standard
    library and of every distribution ftreg depends on (torch, transformers, datasets, ...)."""
    from pydoc_data.topics import topics

    documents = (*(topics[key] for key in sorted(topics)), *stdlib_documents(), *dependency_documents())
    # Shared base classes repeat one docstring across hundreds of models (transformers above all).
    return tuple(dict.fromkeys(documents))


@functools.cache
def stdlib_documents() -> tuple[str, ...]:
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = [path for path in sorted(stdlib.rglob("*.py")) if not _SKIPPED_STDLIB.intersection(path.relative_to(stdlib).parts)]
    return docstrings(paths)


@functools.cache
def dependency_documents() -> tuple[str, ...]:
    from importlib.metadata import distribution

    paths = []
    for name in dependency_closure():
        dist = distribution(name)
        paths += sorted(Path(str(dist.locate_file(file))) for file in dist.files or () if file.suffix == ".py")
    return docstrings(paths)


DOMAIN_DATA = files("ftreg.resources") / "support" / "train.json"  # builtin:support; builtin:support-test stays unseen


def domain_documents() -> list[dict]:
    return json.loads(DOMAIN_DATA.read_text())


def dependency_closure() -> dict[str, str]:
    """Every distribution installing ftreg pulls in (extras aside), by name, with its version."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    versions: dict[str, str] = {}
    pending = [Requirement(spec) for spec in distribution("ftreg").requires or ()]
    while pending:
        requirement = pending.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in versions or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:  # an optional or platform-specific dependency
            continue
        versions[name] = dist.version
        pending += [Requirement(spec) for spec in dist.requires or ()]
    return dict(sorted(versions.items()))


def docstrings(paths: list[Path]) -> tuple[str, ...]:
    """The prose of the module, class and function docstrings in ``paths``, read with `ast`
    (never by importing: some modules have side effects)."""
    import ast

    documents = []
    for path in paths:
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = prose(ast.get_docstring(node) or "")
                if len(text) >= 80:  # one-liners teach little but names
                    documents.append(text)
    return tuple(documents)


_REFERENCE_SECTION = re.compile(r"(Args|Arguments|Parameters|Params|Returns?|Raises|Yields|Attributes|Examples?|Inputs?|Outputs?)\b")


def prose(docstring: str) -> str:
    """The paragraphs of a docstring that read as English: doctests, tables, math and
    parameter lists teach a small model symbols, not language."""
    paragraphs = []
    for paragraph in docstring.split("\n\n"):
        text = " ".join(paragraph.split())
        letters = sum(c.isalpha() or c == " " for c in text)
        if (
            len(text) >= 40
            and letters >= 0.85 * len(text)
            and not text.startswith((">>>", "..", "$", "|", "-", "="))
            and not _REFERENCE_SECTION.match(text)
        ):
            paragraphs.append(text)
    return "\n\n".join(paragraphs)


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


def build(recipe: BaseRecipe, out: Path, show_progress: bool = True, documents: tuple[str, ...] | None = None) -> dict:
    """Pre-train into ``out`` on ``documents`` (by default `corpus_documents`); returns the build
    record (recipe, metrics, corpus, versions)."""
    import platform

    import tokenizers
    import torch
    import transformers

    metrics = pretrain(recipe, out, corpus_documents() if documents is None else documents, show_progress)
    corpus = {
        "source": "pydoc_data.topics + docstrings of the standard library and of ftreg's dependencies",
        "python": platform.python_version(),
        "distributions": dependency_closure(),
        "threads": torch.get_num_threads(),
    }
    if recipe.domain_steps:
        corpus["domain"] = {"source": "builtin:support", "sha256": hashlib.sha256(DOMAIN_DATA.read_bytes()).hexdigest()}
    return {
        "recipe": asdict(recipe),
        "metrics": metrics,
        "corpus": corpus,
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


def pretrain(recipe: BaseRecipe, out: Path, documents: tuple[str, ...], show_progress: bool = True) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_tokenizer(documents, recipe.vocab_size)
    eot = tokenizer.eos_token_id

    def token_stream(selected: list[str]):
        encodings = tokenizer.backend_tokenizer.encode_batch(selected)
        return torch.tensor([token for encoding in encodings for token in (*encoding.ids, eot)], dtype=torch.long)

    # Every 20th document never trains: its loss says whether the base learned English or
    # memorised, and taking it across the corpus keeps every source in both halves.
    train_data = token_stream([d for i, d in enumerate(documents) if i % 20 != 19])
    eval_data = token_stream([d for i, d in enumerate(documents) if i % 20 == 19])

    torch.manual_seed(recipe.seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=recipe.n_positions,
        n_embd=recipe.n_embd,
        n_layer=recipe.n_layer,
        n_head=recipe.n_head,
        resid_pdrop=recipe.dropout,
        embd_pdrop=recipe.dropout,
        attn_pdrop=recipe.dropout,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
    )
    model = GPT2LMHeadModel(config)
    sampler = torch.Generator().manual_seed(recipe.seed)
    # The unfused update, as when the shipped weights were made: `--rebuild` reproduces them bit for bit.
    optimizer = adamw(model, recipe.learning_rate, weight_decay=0.1, fused=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(recipe.warmup_steps, recipe.steps))

    def windows(data, count: int):
        # Random windows rather than epochs: every step sees fresh context boundaries.
        starts = torch.randint(len(data) - recipe.block_size, (count,), generator=sampler)
        return [data[s : s + recipe.block_size] for s in starts.tolist()]

    def train_steps(steps: int, batches, optimizer, scheduler, description: str) -> float:
        model.train()
        progress = tqdm(range(steps), desc=description, disable=not show_progress, unit="step")
        for _ in progress:
            batch = torch.stack(batches())
            loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        return loss.item()

    train_loss = train_steps(recipe.steps, lambda: windows(train_data, recipe.batch_size), optimizer, scheduler, f"Pre-training {EMBEDDED_BASE_NAME}")
    if recipe.domain_steps:
        domain_data = token_stream([f"{pair['instruction']}\n{pair['response']}" for pair in domain_documents()])
        optimizer = adamw(model, recipe.domain_learning_rate, weight_decay=0.1, fused=False)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(recipe.warmup_steps, recipe.domain_steps))
        half = recipe.batch_size // 2
        train_loss = train_steps(
            recipe.domain_steps,
            lambda: windows(domain_data, half) + windows(train_data, recipe.batch_size - half),
            optimizer,
            scheduler,
            f"Adapting {EMBEDDED_BASE_NAME} to support text",
        )

    model.eval()
    with torch.no_grad():
        # A fixed sample of the held-out text, 1024 blocks at most, keeps the measure cheap and comparable.
        n_blocks = min(len(eval_data) // recipe.block_size, 1024)
        blocks = eval_data[: n_blocks * recipe.block_size].view(-1, recipe.block_size).split(recipe.batch_size)
        eval_loss = sum(model(input_ids=b, labels=b).loss.item() * len(b) for b in blocks) / n_blocks
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "train_loss": round(train_loss, 4),
        "eval_loss": round(eval_loss, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_tokens": len(train_data),
    }
