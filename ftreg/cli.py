"""The ``ftreg`` command line. Commands parse, call the library, and print; nothing more.

Heavy libraries (torch, transformers, peft, datasets, bitsandbytes) are imported inside the
commands that need them, so ``--help``, ``list``, ``show`` and ``plugins`` start fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from ftreg import __version__, plugins
from ftreg.adapters.compose import SamplingOptions
from ftreg.errors import FtregError
from ftreg.registry import Registry, lineage
from ftreg.training.spec import SCHEDULERS, TrainSpec


class UserError(click.ClickException):
    exit_code = 2


class FtregGroup(click.Group):
    """Turns every FtregError into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FtregError as error:
            raise UserError(str(error)) from error


@click.group(cls=FtregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ftreg")
@click.option(
    "--registry",
    "registry_home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Registry directory. Default: $FTREG_HOME, else the platform's user data directory.",
)
@click.pass_context
def cli(ctx: click.Context, registry_home: Path | None) -> None:
    """Train, version, compare and serve fine-tuned GPT-2 models."""
    ctx.obj = Registry(registry_home)
    ctx.call_on_close(ctx.obj.close)


pass_registry = click.make_pass_decorator(Registry)


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _metric(entry) -> str:
    key = entry.key_metric
    return f"{key[0]}={key[1]:.4g}" if key else ""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


@cli.command(name="list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (see docs/json.md).")
@pass_registry
def list_(registry: Registry, name: str | None, as_json: bool) -> None:
    """List versions, optionally of one NAME."""
    entries = registry.entries(name)
    if as_json:
        _echo_json([entry.to_json() for entry in entries])
        return
    if not entries:
        click.echo(f"No versions{f' of {name}' if name else ''} in {registry.home}.", err=True)
        return
    rows = [
        [
            entry.ref + "".join(f" @{alias}" for alias in entry.aliases),
            entry.kind,
            entry.base or "",
            entry.strategy or "",
            _metric(entry),
            entry.created_at.replace("T", " ").removesuffix("+00:00"),
        ]
        for entry in entries
    ]
    click.echo(_table(["REF", "KIND", "BASE", "STRATEGY", "METRIC", "CREATED (UTC)"], rows))


@cli.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (see docs/json.md).")
@pass_registry
def show(registry: Registry, ref: str, as_json: bool) -> None:
    """Show one version: what it is, what made it, and its files."""
    entry = registry.resolve(ref)
    if as_json:
        _echo_json({**entry.to_json(), "lineage": lineage.chain(registry, entry)})
        return
    m = entry.manifest
    lines = [
        ("ref", entry.ref + "".join(f"  @{alias}" for alias in entry.aliases)),
        ("kind", entry.kind),
        ("path", str(entry.path)),
        ("created", entry.created_at),
        ("base", entry.base or "-"),
        ("strategy", entry.strategy or "-"),
        ("dataset", json.dumps(m.get("dataset")) if m.get("dataset") else "-"),
        ("metrics", "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(entry.metrics.items())) or "-"),
        ("config", json.dumps(entry.config, sort_keys=True) if entry.config else "-"),
        ("lineage", " <- ".join(lineage.chain(registry, entry))),
        ("versions", "  ".join([f"ftreg={m.get('ftreg_version')}", *(f"{k}={v}" for k, v in sorted(m.get("plugin_versions", {}).items()))])),
    ]
    for key, value in lines:
        click.echo(f"{key + ':':<10} {value}")
    click.echo("files:")
    for rel, info in sorted(m["files"].items()):
        click.echo(f"  {rel}  {info['size']:,} bytes  sha256:{info['sha256'][:16]}")


@cli.command()
@click.argument("ref")
@click.option("--force", is_flag=True, help="Remove even if aliases point at it (the aliases go too).")
@pass_registry
def rm(registry: Registry, ref: str, force: bool) -> None:
    """Remove a version. Its number is never reused."""
    entry = registry.remove(ref, force=force)
    click.echo(f"Removed {entry.ref}")


@cli.command()
@click.argument("ref")
@click.argument("alias", required=False)
@click.option("--rm", "remove", is_flag=True, help="Remove the alias REF (NAME@ALIAS) instead.")
@pass_registry
def tag(registry: Registry, ref: str, alias: str | None, remove: bool) -> None:
    """Point NAME@ALIAS at the version REF resolves to (moving it if it exists); every move is kept."""
    if remove:
        name, _, alias = ref.partition("@")
        if not alias:
            raise UserError(f"--rm takes NAME@ALIAS, got {ref!r}")
        entry = registry.untag(name, alias)
        click.echo(f"Removed {name}@{alias} (was {entry.ref})")
        return
    if alias is None:
        raise UserError("missing ALIAS: ftreg tag REF ALIAS")
    entry = registry.tag(ref, alias)
    click.echo(f"{entry.name}@{alias} -> {entry.ref}")


@cli.command()
@click.argument("alias_ref", metavar="NAME@ALIAS")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_registry
def history(registry: Registry, alias_ref: str, as_json: bool) -> None:
    """Every move of an alias: where it pointed, when, and who moved it."""
    name, _, alias = alias_ref.partition("@")
    if not alias:
        raise UserError(f"expected NAME@ALIAS, got {alias_ref!r}")
    moves = registry.alias_history(name, alias)
    if not moves:
        raise UserError(f"{alias_ref} has never pointed anywhere")
    if as_json:
        _echo_json(moves)
        return
    rows = [[m["moved_at"], f"{name}-v{m['version']}" if m["version"] else "(removed)", m["moved_by"]] for m in moves]
    click.echo(_table(["WHEN (UTC)", "POINTED AT", "BY"], rows))


@cli.command()
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Check every version.")
@pass_registry
def verify(registry: Registry, refs: tuple[str, ...], everything: bool) -> None:
    """Re-hash every file of the versions and report each one that changed; exit code 1 if any."""
    entries = registry.entries() if everything or not refs else [registry.resolve(ref) for ref in refs]
    problems = [problem for entry in entries for problem in registry.problems(entry)]
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{len(entries)} versions checked, {len(problems)} problems")
    if problems:
        sys.exit(1)


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@pass_registry
def diff(registry: Registry, a: str, b: str, as_json: bool) -> None:
    """What differs between two versions: lineage, settings and metrics."""
    left, right = registry.resolve(a), registry.resolve(b)
    differences = lineage.differences(left, right)
    if as_json:
        _echo_json(differences)
        return
    if not differences:
        click.echo(f"{left.ref} and {right.ref} have the same lineage, settings and metrics")
        return
    rows = [[d["key"], _short(d[left.ref]), _short(d[right.ref])] for d in differences]
    click.echo(_table(["", left.ref, right.ref], rows))


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_registry
def runs(registry: Registry, as_json: bool) -> None:
    """List training runs: running, finished, failed, interrupted (resumable with --resume)."""
    from ftreg.training.runs import list_runs

    found = [run.to_json() for run in list_runs(registry)]
    if as_json:
        _echo_json(found)
        return
    rows = [
        [
            run["id"],
            run["settings"]["strategy"],
            run["status"] + (" (resumable)" if run["resumable"] else ""),
            str(run["newest_checkpoint_step"] or ""),
            run["published"] or "",
            run["started_at"].replace("T", " ").removesuffix("+00:00"),
        ]
        for run in found
    ]
    click.echo(_table(["RUN", "STRATEGY", "STATUS", "CHECKPOINT", "PUBLISHED", "STARTED (UTC)"], rows))


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def plugins_(as_json: bool) -> None:
    """List installed plugins, their hooks, and errors of broken ones."""
    infos = plugins.plugin_infos()
    if as_json:
        _echo_json([info.to_json() for info in infos])
        return
    rows = [[info.name, info.version or "", ", ".join(info.hooks), f"BROKEN: {info.error}" if info.error else "ok"] for info in infos]
    click.echo(_table(["PLUGIN", "VERSION", "HOOKS", "STATUS"], rows))
    formats, strategies = plugins.dataset_formats(), plugins.training_strategies()
    click.echo(f"\nDataset formats: {', '.join(sorted(formats)) or 'none'}")
    click.echo(f"Training strategies: {', '.join(sorted(strategies)) or 'none'}")


def _parse_columns(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    columns = {}
    for value in values:
        field, sep, name = value.partition("=")
        if not sep or not field or not name:
            raise click.BadParameter(f"expected FIELD=NAME, got {value!r}", param=param)
        columns[field] = name
    return columns


@cli.command()
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML or YAML file of settings (keys as in --print-config); flags override it.")
@click.option("--from", "parent", metavar="REF", help="Re-run the settings of this version (override any of them with flags) and record it as the parent.")
@click.option("--print-config", is_flag=True, help="Print the effective settings as TOML and exit.")
@click.option("--resume", "resume_run", metavar="RUN", help="Continue an interrupted run (see `ftreg runs`) from its newest complete checkpoint.")
@click.option("--strategy", help="Training strategy (see `ftreg plugins`), e.g. lora8bit.")
@click.option("--dataset", help="Dataset file, or builtin:NAME (builtin:support).")
@click.option("--name", help="Registry name; the result is its next version.")
@click.option("--base", default=None, help="Base: registry checkpoint, Hugging Face id (gpt2) or directory. Default: the embedded tiny-gpt2.")
@click.option("--format", "format_", help="Dataset format (see `ftreg plugins`). Default: detected from the content.")
@click.option("--column", "columns", multiple=True, callback=_parse_columns, metavar="FIELD=NAME", help="Read FIELD from the file's column/key NAME, e.g. question=Q. Repeatable.")
@click.option("--eval-dataset", help="Held-out dataset for eval loss (same format), instead of --eval-split.")
@click.option("--epochs", type=float, default=TrainSpec.epochs, show_default=True)
@click.option("--max-steps", type=int, default=TrainSpec.max_steps, show_default=True, help="> 0 overrides --epochs.")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, default=TrainSpec.learning_rate, show_default=True)
@click.option("--batch-size", type=int, default=TrainSpec.batch_size, show_default=True, help="Per-device batch size.")
@click.option("--grad-accum", type=int, default=TrainSpec.grad_accum, show_default=True, help="Gradient accumulation steps.")
@click.option("--lr-scheduler", type=click.Choice(SCHEDULERS), default=TrainSpec.lr_scheduler, show_default=True)
@click.option("--warmup-steps", type=int, default=TrainSpec.warmup_steps, show_default=True)
@click.option("--max-grad-norm", type=float, default=TrainSpec.max_grad_norm, show_default=True)
@click.option("--weight-decay", type=float, default=TrainSpec.weight_decay, show_default=True)
@click.option("--seed", type=int, default=TrainSpec.seed, show_default=True)
@click.option("--logging-steps", type=int, default=TrainSpec.logging_steps, show_default=True)
@click.option("--max-length", type=int, default=TrainSpec.max_length, show_default=True, help="Truncate examples to this many tokens.")
@click.option("--eval-split", type=float, default=TrainSpec.eval_split, show_default=True, help="Fraction held out for eval loss.")
@click.option("--save-steps", type=int, default=TrainSpec.save_steps, show_default=True, help="Write a resumable checkpoint every N steps (0: never).")
@click.option("--save-total-limit", type=int, default=TrainSpec.save_total_limit, show_default=True, help="Keep only the newest K checkpoints.")
@click.option("--eval-steps", type=int, default=TrainSpec.eval_steps, show_default=True, help="scratch: evaluate every N steps.")
@click.option("--patience", type=int, default=TrainSpec.patience, show_default=True, help="scratch: stop after N evaluations without improvement (0: never).")
@click.option("--init", help="scratch: start from random weights: config:tiny or a GPT-2 config.json.")
@click.option("--lora-r", type=int, default=TrainSpec.lora_r, show_default=True)
@click.option("--lora-alpha", type=int, default=TrainSpec.lora_alpha, show_default=True)
@click.option("--lora-dropout", type=float, default=TrainSpec.lora_dropout, show_default=True)
@click.pass_context
def train(ctx: click.Context, config_file: Path | None, parent: str | None, print_config: bool, resume_run: str | None, **options) -> None:
    """Train a model and publish it as the next version of --name."""
    from ftreg.training.config import effective_spec, to_toml
    from ftreg.training.run import train as run_training
    from ftreg.training.runs import load_run

    registry: Registry = ctx.obj
    run = None
    if resume_run:
        # A resumed run continues with exactly the settings it started with.
        run = load_run(registry, resume_run)
        if not run.resumable:
            raise UserError(f"run {run.id} is {run.status}; only an interrupted or failed run with a checkpoint can be resumed")
        spec = TrainSpec(**run.record["settings"])
        parent_entry = registry.resolve(run.record["parent"]) if run.record["parent"] else None
    else:
        explicit = {
            ("format" if key == "format_" else key): value
            for key, value in options.items()
            if ctx.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        }
        parent_entry = registry.resolve(parent) if parent else None
        spec = effective_spec(explicit, config_file, parent_entry)
    if print_config:
        click.echo(to_toml(spec), nl=False)
        return
    # Training libraries print progress and logs to stdout; stdout is kept for the new reference alone,
    # so that `ref=$(ftreg train ...)` works.
    with contextlib.redirect_stdout(sys.stderr):
        entry = run_training(spec, registry, notify=lambda note: click.echo(note, err=True), parent=parent_entry, resume=run)
    if entry is not None:
        click.echo(entry.ref)


@cli.command()
@click.argument("prompt", nargs=-1, required=True)
@click.option("--adapter", help="Registry adapter (or checkpoint) to generate with, e.g. support-v2.")
@click.option("--base", help="Base to generate with: alone, or instead of the adapter's recorded base.")
@click.option("--format", "prompt_format", help="Wrap the prompt in this dataset format's template (default: the adapter's).")
@click.option("--raw", is_flag=True, help="Send the prompt as it is, without any template.")
@click.option("--max-new-tokens", type=int, default=SamplingOptions.max_new_tokens, show_default=True)
@click.option("--temperature", type=float, default=SamplingOptions.temperature, show_default=True)
@click.option("--top-p", type=float, default=SamplingOptions.top_p, show_default=True)
@click.option("--top-k", type=int, default=SamplingOptions.top_k, show_default=True)
@click.option("--repetition-penalty", type=float, default=SamplingOptions.repetition_penalty, show_default=True)
@click.option("--greedy", is_flag=True, help="Always take the most likely token (deterministic).")
@click.option("--seed", type=int, help="Seed for sampling.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"prompt": ..., "completion": ...}, ...] instead.')
@pass_registry
def generate(registry: Registry, prompt: tuple[str, ...], adapter, base, prompt_format, raw, as_json, **sampling) -> None:
    """Generate a completion for each PROMPT; prints the completions only."""
    from ftreg.adapters.compose import compose

    options = SamplingOptions(**sampling)
    composed = compose(registry, adapter=adapter, base=base, prompt_format=prompt_format)
    completions = [(text, composed.generate(text, options, raw=raw)) for text in prompt]
    if as_json:
        _echo_json([{"prompt": text, "completion": completion, "model": composed.description} for text, completion in completions])
        return
    for _, completion in completions:
        click.echo(completion)


@cli.command()
@click.argument("ref")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--merge", is_flag=True, help="Merge an adapter into its base: a full model for plain AutoModelForCausalLM.")
@pass_registry
def export(registry: Registry, ref: str, directory: Path, merge: bool) -> None:
    """Write a version to DIRECTORY in standard Hugging Face layout, for use without ftreg."""
    from ftreg.adapters.export import export as export_version

    click.echo(export_version(registry, ref, directory, merge=merge, notify=lambda note: click.echo(note, err=True)))


@cli.command()
@click.argument("ref")
@click.option("--repo", "repo_id", required=True, metavar="OWNER/NAME", help="Hub repository (created if needed).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@pass_registry
def push(registry: Registry, ref: str, repo_id: str, private: bool) -> None:
    """Upload a version to the Hugging Face Hub as one commit tagged vN; prints its URL."""
    from ftreg.hub import push as push_version

    entry = registry.resolve(ref)
    registry.verify_files(entry)
    click.echo(push_version(entry, repo_id, private=private))


@cli.command()
@click.argument("repo", metavar="OWNER/NAME[@REVISION]")
@click.option("--name", required=True, help="Local registry name; the download becomes its next version.")
@click.option("--trust-pickle", is_flag=True, help="Also download pickle-format files (*.bin, *.pt, ...). They can run code when loaded.")
@pass_registry
def pull(registry: Registry, repo: str, name: str, trust_pickle: bool) -> None:
    """Download a Hub repository, check it, and register it as a new local version."""
    from ftreg.hub import pull as pull_version

    entry = pull_version(registry, repo, name, trust_pickle=trust_pickle, notify=lambda note: click.echo(note, err=True))
    click.echo(entry.ref)


@cli.group()
def data() -> None:
    """Inspect datasets before spending time on training."""


@data.command(name="check")
@click.argument("dataset")
@click.option("--format", "format_", help="Dataset format. Default: detected from the content.")
@click.option("--column", "columns", multiple=True, callback=_parse_columns, metavar="FIELD=NAME", help="Read FIELD from column/key NAME. Repeatable.")
@click.option("--base", help="Whose tokenizer counts the tokens. Default: the embedded tiny-gpt2.")
@click.option("--max-length", type=int, default=TrainSpec.max_length, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_registry
def data_check(registry: Registry, dataset: str, format_, columns, base, max_length: int, as_json: bool) -> None:
    """Describe DATASET as training would see it; exit code 0 when it is trainable."""
    from transformers import AutoTokenizer

    from ftreg.bases import resolve_base
    from ftreg.dataset import check_report, load_dataset
    from ftreg.training.run import context_length

    loaded = load_dataset(dataset, format_, columns)
    resolved = resolve_base(base, registry)
    report = check_report(loaded, AutoTokenizer.from_pretrained(resolved.path), min(max_length, context_length(resolved.path)))
    if as_json:
        _echo_json({**report, "tokenizer": resolved.ref})
        return
    tokens = report["tokens"]
    duplicates = report["duplicate_lines"]
    lines = [
        ("file", f"{report['path']}" + (f" ({dataset})" if dataset != report["path"] else "")),
        ("format", report["format"] + (" (detected)" if report["detected"] else "")),
        ("examples", f"{report['examples']}" + (f" (warning: {len(duplicates)} duplicates, lines {', '.join(map(str, duplicates[:10]))})" if duplicates else "")),
        ("tokens", f"min {tokens['min']}  median {tokens['median']}  p95 {tokens['p95']}  max {tokens['max']}  (tokenizer of {resolved.ref})"),
        ("truncated", f"{report['truncated']} of {report['examples']} at --max-length {report['max_length']}"),
    ]
    for key, value in lines:
        click.echo(f"{key + ':':<11}{value}")
    click.echo(f"example (line {report['example']['line']}; tokens in [[ ]] carry loss):")
    click.echo(report["example"]["rendered"])


@cli.group()
def base() -> None:
    """The embedded default base model."""


@base.command(name="init")
@click.option("--rebuild", is_flag=True, help="Pre-train from the recipe (~15 CPU-minutes) instead of publishing the shipped weights; adds a new version.")
@pass_registry
def base_init(registry: Registry, rebuild: bool) -> None:
    """Publish the embedded tiny GPT-2 base (once; later calls print the existing one)."""
    from ftreg.embedded_base import BaseRecipe, build_embedded_base, ensure_embedded_base

    entry = build_embedded_base(registry, BaseRecipe()) if rebuild else ensure_embedded_base(registry)
    click.echo(entry.ref)


plugins.register_commands(cli)


def main() -> None:
    cli()
