"""The ``ftreg`` command line. Commands parse, call the library, and print; nothing more.

Heavy libraries (torch, transformers, peft, datasets, bitsandbytes) are imported inside the
commands that need them, so ``--help``, ``list``, ``show`` and ``plugins`` start fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import sys
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

import ftreg
from ftreg import FtregError, GenerationOptions, Registry, TrainSpec, __version__


class UserError(click.ClickException):
    exit_code = 2


class FtregGroup(click.Group):
    """Turns every FtregError into a one-line message and exit code 2.

    Library messages name settings as `name` (the Python API's keyword); here they become the
    invoked command's flag (`max_length` -> --max-length), since that is what a CLI user types.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FtregError as error:
            raise UserError(_with_flags(str(error), self._invoked(ctx))) from error

    def _invoked(self, ctx: click.Context) -> list[click.Command]:
        command = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
        if isinstance(command, click.Group):
            return list(command.commands.values())
        return [command] if command is not None else []


def _with_flags(message: str, commands: list[click.Command]) -> str:
    flags = {}
    for command in commands:
        for param in command.params:
            if isinstance(param, click.Option) and param.name and not param.hidden:
                flags[param.name.rstrip("_")] = max(param.opts, key=len)
    return re.sub(r"`(\w+)`", lambda match: flags.get(match[1], match[1]), message)


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
    if registry_home is not None and not registry_home.exists() and ctx.invoked_subcommand in NEEDS_EXISTING_REGISTRY:
        raise UserError(f"no registry at {registry_home} (--registry); check the path")  # a typo must not create one
    ctx.obj = Registry(registry_home)
    ctx.call_on_close(ctx.obj.close)
    _warnings_as_lines()


def _warnings_as_lines() -> None:
    """Warnings ftreg raises for the user (a plugin's failed event hook, an old setting) print as one line."""
    original = warnings.showwarning
    if getattr(original, "ftreg_lines", False):
        return  # installed already (a process that runs several commands)

    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if issubclass(category, (ftreg.PluginWarning, ftreg.SettingsWarning)):
            click.echo(f"warning: {message}", err=True)
        else:
            original(message, category, filename, lineno, file, line)

    show.ftreg_lines = True  # type: ignore[attr-defined]
    warnings.showwarning = show


pass_registry = click.make_pass_decorator(Registry)
# Commands that use versions already in a registry: pointed at a directory that does not exist, they
# refuse instead of creating an empty registry there (a typo in --registry).
NEEDS_EXISTING_REGISTRY = {"list", "show", "history", "diff", "verify", "runs", "gc", "export", "push", "generate", "rm", "tag", "serve"}


def _echo_json(data: Any) -> None:
    """Strict JSON: a non-finite number (which JSON cannot express) is printed as null."""
    try:
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:  # rare (a record from before publish refused them): walk the data only then
        text = json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False)
    click.echo(text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


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
            _evaluation_line(evaluations[0], headline=True) if (evaluations := registry.evaluations(entry)) else "",
            entry.created_at.replace("T", " ").removesuffix("+00:00"),
        ]
        for entry in entries
    ]
    click.echo(_table(["REF", "KIND", "BASE", "STRATEGY", "METRIC", "EVALUATED (NEWEST)", "CREATED (UTC)"], rows))


def _evaluation_line(evaluation: dict[str, Any], headline: bool = False) -> str:
    """An evaluation's numbers and the data they were measured on; ``headline``: perplexity and ROUGE-L only."""
    results = evaluation["results"]
    shown = [key for key in ("perplexity", "rouge_l") if key in results] if headline else [key for key in results if key not in ("examples", "loss_tokens")]
    return f"{'  '.join(f'{key}={_short(results[key])}' for key in shown)} on {evaluation['dataset']}"


@cli.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (see docs/json.md).")
@pass_registry
def show(registry: Registry, ref: str, as_json: bool) -> None:
    """Show one version: what it is, what made it, and its files."""
    entry = registry.resolve(ref)
    if as_json:
        _echo_json({**entry.to_json(), "lineage": registry.lineage(entry), "orphaned": registry.lineage_problems(entry), "evaluations": registry.evaluations(entry)})
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
        ("lineage", " <- ".join(registry.lineage(entry))),
        ("versions", "  ".join([f"ftreg={m.get('ftreg_version')}", *(f"{k}={_plugin_version(v)}" for k, v in sorted(m.get("plugin_versions", {}).items()))])),
    ]
    lines += [("orphaned", problem.split(": orphaned: ", 1)[1]) for problem in registry.lineage_problems(entry)]
    lines += [("evaluated", _evaluation_line(each)) for each in registry.evaluations(entry)]
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
@click.option("--if-better", "metric", metavar="METRIC", help="Move only if REF beats the alias's version on METRIC (loss, perplexity, bleu, rouge_l, ...).")
@click.option("--dataset", help="With --if-better: the data to compare on (default: the newest both were evaluated on).")
@click.option("--format", "format_name", help="With --if-better and --dataset: the dataset's format (default: detected).")
@click.option("--min-delta", type=click.FloatRange(min=0), default=0.0, show_default=True, help="With --if-better: how much better REF must be.")
@pass_registry
def tag(registry: Registry, ref: str, alias: str | None, remove: bool, metric: str | None, dataset: str | None, format_name: str | None, min_delta: float) -> None:
    """Point NAME@ALIAS at the version REF resolves to (moving it if it exists); every move is kept.

    With --if-better METRIC the alias moves only when REF measures better than the version it
    points at now; a refusal exits 1 and moves nothing."""
    if metric is not None:
        if remove or alias is None:
            raise UserError("--if-better takes REF ALIAS, and no --rm")
        verdict = ftreg.tag_if_better(ref, alias, metric, dataset=dataset, format=format_name, min_delta=min_delta, registry=registry, show_progress=_progress())
        name = ftreg.parse_ref(verdict.candidate[0]).name
        if verdict.holder is None:
            click.echo(f"{name}@{alias} -> {verdict.candidate[0]} ({'new alias: nothing to compare against' if verdict.moved else 'it already points there'})")
            return
        (new_ref, new_value), (old_ref, old_value) = verdict.candidate, verdict.holder
        better = "higher" if verdict.higher_is_better else "lower"
        compared = f"{metric} {_short(new_value)} ({new_ref}) vs {_short(old_value)} ({old_ref}) on {verdict.dataset}, {better} is better"
        if verdict.moved:
            click.echo(f"{name}@{alias} -> {new_ref}: {compared}")
            return
        margin = f" by more than {_short(min_delta)}" if min_delta else ""
        click.echo(f"{name}@{alias} stays at {old_ref}: {new_ref} is not better{margin}: {compared}", err=True)
        sys.exit(1)
    if remove:
        parsed = ftreg.parse_ref(ref)
        if not parsed.alias:
            raise UserError(f"--rm takes NAME@ALIAS, got {ref!r}")
        entry = registry.untag(parsed.name, parsed.alias)
        click.echo(f"Removed {parsed} (was {entry.ref})")
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
    parsed = ftreg.parse_ref(alias_ref)
    if not parsed.alias:
        raise UserError(f"expected NAME@ALIAS, got {alias_ref!r}")
    name, alias = parsed.name, parsed.alias
    moves = registry.alias_history(name, alias)
    if not moves:
        raise UserError(f"{alias_ref} has never pointed anywhere")
    if as_json:
        _echo_json(moves)
        return
    rows = [[m["moved_at"], f"{name}-v{m['version']}" if m["version"] else "(removed)", m["moved_by"], _evidence(m.get("evidence"))] for m in moves]
    click.echo(_table(["WHEN (UTC)", "POINTED AT", "BY", "WHY"], rows))


def _evidence(evidence: dict[str, Any] | None) -> str:
    """What a gated move compared, in a line: "rouge_l 0.334 > 0.144 (support-v1) on builtin:support-test"."""
    if not evidence:
        return ""
    if evidence["holder"] is None:
        return f"--if-better {evidence['metric']}: a new alias"
    sign = ">" if evidence["higher_is_better"] else "<"
    return f"{evidence['metric']} {_short(evidence['candidate']['value'])} {sign} {_short(evidence['holder']['value'])} ({evidence['holder']['ref']}) on {evidence['dataset']}"


@cli.command()
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Check every version.")
@pass_registry
def verify(registry: Registry, refs: tuple[str, ...], everything: bool) -> None:
    """Re-hash every file of the versions and report each one that changed; exit code 1 if any."""
    entries = registry.entries() if everything or not refs else [registry.resolve(ref) for ref in refs]
    # A version removed while this runs is not a problem: only what is registered when read is checked.
    problems = [problem for entry in entries for problem in registry.problems(entry) if registry.exists(entry.ref)]
    if everything or not refs:
        problems += [f"{path}: not a listed version (left by an interrupted publish or rm)" for path in registry.unlisted_versions()]
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"{_count(len(entries), 'version')} checked, {_count(len(problems), 'problem')}")
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
    differences = registry.differences(left, right) + _evaluation_differences(registry, left, right)
    if as_json:
        _echo_json(differences)
        return
    if not differences:
        click.echo(f"{left.ref} and {right.ref} have the same lineage, settings and metrics")
        return
    rows = [[d["key"], _short(d[left.ref]), _short(d[right.ref])] for d in differences]
    click.echo(_table(["", left.ref, right.ref], rows))


@cli.command(name="eval")
@click.argument("ref")
@click.option("--dataset", required=True, help="The data to measure on: a file, a directory, builtin:NAME or a Hub dataset.")
@click.option("--format", "format_name", help="The dataset's format (default: detected).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N examples.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="Longest greedy answer.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_registry
def eval_(registry: Registry, ref: str, dataset: str, format_name: str | None, limit: int | None, max_new_tokens: int, as_json: bool) -> None:
    """Measure a version on a dataset: loss, perplexity, BLEU, ROUGE-L, exact match, answer length.

    The result is stored with the version (its files never change); the same evaluation again is read back."""
    result = ftreg.evaluate(ref, dataset, format=format_name, limit=limit, max_new_tokens=max_new_tokens, registry=registry, show_progress=_progress() and not as_json)
    if as_json:
        _echo_json({"ref": result.ref, "dataset": result.dataset, "fingerprint": result.fingerprint, "settings": result.settings,
                    "results": result.results, "cached": result.cached})
        return
    click.echo(f"{result.ref} on {result.dataset} ({result.fingerprint[:19]}){' (stored earlier)' if result.cached else ''}")
    for key, value in result.results.items():
        click.echo(f"  {key:<14} {_short(value)}")


@cli.command()
@click.argument("refs", nargs=-1, required=True)
@click.option("--dataset", required=True, help="The data to compare on: a file, a directory, builtin:NAME or a Hub dataset.")
@click.option("--format", "format_name", help="The dataset's format (default: detected).")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N examples.")
@click.option("--samples", type=click.IntRange(min=0), default=3, show_default=True, help="Answers shown next to the reference.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the comparison as one self-contained HTML file.")
@pass_registry
def compare(registry: Registry, refs: tuple[str, ...], dataset: str, format_name: str | None, limit: int | None, samples: int, html_path: Path | None) -> None:
    """Versions side by side on one dataset: each metric (best marked) and answers next to the references."""
    if len(refs) < 2:
        raise UserError("compare takes two versions or more")
    comparison = ftreg.compare(list(refs), dataset, format=format_name, limit=limit, samples=samples, registry=registry, show_progress=_progress())
    click.echo(ftreg.comparison_table(comparison))
    if html_path is not None:
        html_path.write_text(ftreg.comparison_html(comparison), encoding="utf-8")
        click.echo(f"Wrote {html_path}", err=True)


def _progress() -> bool:
    """A progress bar on a terminal only: in logs and pipes it is noise before the answer."""
    return sys.stderr.isatty()


def _evaluation_differences(registry: Registry, left: ftreg.Entry, right: ftreg.Entry) -> list[dict[str, Any]]:
    """The numbers of both versions' evaluations on the same data and settings, as `diff` rows."""
    theirs = {(each["fingerprint"], json.dumps(each["settings"], sort_keys=True)): each for each in registry.evaluations(right)}
    rows = []
    for mine in registry.evaluations(left):
        other = theirs.get((mine["fingerprint"], json.dumps(mine["settings"], sort_keys=True)))
        if other is not None:
            for key in mine["results"].keys() | other["results"].keys():
                if mine["results"].get(key) != other["results"].get(key):
                    rows.append({"key": f"eval {key} on {mine['dataset']}", left.ref: mine["results"].get(key), right.ref: other["results"].get(key)})
    return sorted(rows, key=lambda row: row["key"])


def _plugin_version(provided: Any) -> str:
    """``{"plugin": P, "version": V}`` as ``P V`` (older records may hold a plain string)."""
    return f"{provided.get('plugin')} {provided.get('version') or ''}".strip() if isinstance(provided, dict) else str(provided)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_registry
def runs(registry: Registry, as_json: bool) -> None:
    """List training runs: running, finished, failed, interrupted (resumable with --resume)."""
    found = [run.to_json() for run in ftreg.runs(registry=registry)]
    if as_json:
        _echo_json(found)
        return
    rows = [
        [
            run["id"],
            run["settings"].get("strategy", ""),
            run["status"] + (" (resumable)" if run["resumable"] else ""),
            str(run["newest_checkpoint_step"] or ""),
            run["published"] or "",
            run["started_at"].replace("T", " ").removesuffix("+00:00"),
        ]
        for run in found
    ]
    click.echo(_table(["RUN", "STRATEGY", "STATUS", "CHECKPOINT", "PUBLISHED", "STARTED (UTC)"], rows))


@cli.command()
@click.option("--yes", is_flag=True, help="Remove what is listed (without it, gc only lists).")
@pass_registry
def gc(registry: Registry, yes: bool) -> None:
    """List what no version or resumable run needs (checkpoints of finished runs, leftovers); --yes removes it."""
    found = ftreg.gc(remove=yes, registry=registry)
    for path, why in found:
        click.echo(f"{'removed' if yes else 'would remove'} {path}: {why}")
    if not found:
        click.echo("Nothing to remove.")
    elif not yes:
        click.echo(f"{_count(len(found), 'item')}; run `ftreg gc --yes` to remove {'it' if len(found) == 1 else 'them'}.")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("packages", nargs=-1, type=click.UNPROCESSED)
@click.option("-e", "--editable", "editable", multiple=True, metavar="PATH", help="Install a local plugin project in editable mode.")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade the packages to their newest versions.")
def install(packages: tuple[str, ...], editable: tuple[str, ...], upgrade: bool) -> None:
    """Install plugin packages with pip, into the environment ftreg runs in (other pip options pass through)."""
    if not packages and not editable:
        raise UserError("name a package to install, or -e PATH")
    sys.exit(_pip("install", *(["--upgrade"] if upgrade else []), *(arg for path in editable for arg in ("-e", path)), *packages))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("packages", nargs=-1, required=True, type=click.UNPROCESSED)
def uninstall(packages: tuple[str, ...]) -> None:
    """Uninstall plugin packages from the environment ftreg runs in."""
    sys.exit(_pip("uninstall", "--yes", *packages))


def _pip(*args: str) -> int:
    """pip of the interpreter running ftreg, so a plugin lands where ftreg finds it."""
    import subprocess

    return subprocess.call([sys.executable, "-m", "pip", *args])


@cli.command(name="plugins")
@click.option("--strategy", metavar="NAME", help="Show one training strategy's options instead.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def plugins_(strategy: str | None, as_json: bool) -> None:
    """List installed plugins, their hooks, and errors of broken ones."""
    if strategy is not None:
        options = ftreg.training_strategies().get(strategy)
        if options is None:
            raise UserError(f"unknown training strategy {strategy!r}; available: {', '.join(sorted(ftreg.training_strategies()))}")
        described = options.options_class.describe()
        if as_json:
            _echo_json(described)
        else:
            click.echo(_strategy_options_text(strategy))
        return
    infos = ftreg.plugin_infos()
    if as_json:
        _echo_json([info.to_json() for info in infos])
        return
    rows = [[info.name, info.version or "", ", ".join(info.hooks), f"BROKEN: {info.error}" if info.error else "ok"] for info in infos]
    click.echo(_table(["PLUGIN", "VERSION", "HOOKS", "STATUS"], rows))
    sections: dict[str, dict[str, Any]] = {
        "Dataset sources": ftreg.dataset_sources(),
        "Dataset formats": dict(sorted(ftreg.dataset_formats().items())),
        "Training strategies": dict(sorted(ftreg.training_strategies().items())),
    }
    width = max(len(name) for found in sections.values() for name in found) + 2
    for title, found in sections.items():
        click.echo(f"\n{title}:")
        for name, provided in found.items():
            click.echo(f"  {name:<{width}}{provided.description}")


def _strategy_options_text(name: str) -> str:
    described = ftreg.training_strategies()[name].options_class.describe()
    if not described:
        return f"Strategy {name} has no options of its own."
    lines = [f"Options of strategy {name} (-o KEY=VALUE, or a [{name}] table in --config):"]
    for item in described:
        lines.append(f"  {item['name']} ({item['type']}, default {item['default']!r}): {item['help']}")
    return "\n".join(lines)


def _parse_pairs(what: str) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], dict[str, str]]:
    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
        pairs = {}
        for value in values:
            key, sep, item = value.partition("=")
            if not sep or not key or not item:
                raise UserError(f"{max(param.opts, key=len)}: expected {what}, got {value!r}")  # one line, as every user error
            pairs[key] = item
        return pairs

    return parse


def _spec_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """A flag for every shared setting, generated from TrainSpec's fields and their help."""
    hints = typing.get_type_hints(TrainSpec)
    for spec_field in reversed(dataclasses.fields(TrainSpec)):
        meta = spec_field.metadata
        if not meta.get("cli", True):
            continue
        flag = meta.get("flag", "--" + spec_field.name.replace("_", "-"))
        names = [flag, *meta.get("aliases", ()), spec_field.name]
        kind = hints[spec_field.name]
        if typing.get_origin(kind) is dict:
            option = click.option(flag, spec_field.name, multiple=True, callback=_parse_pairs("FIELD=NAME"), metavar=meta.get("metavar"), help=meta["help"])
        elif spec_field.name == "strategy":
            option = click.option(*names, help=meta["help"], is_eager=True, callback=_remember_strategy)
        elif meta.get("required"):
            option = click.option(*names, help=meta["help"])
        elif "choices" in meta:
            option = click.option(*names, type=click.Choice(meta["choices"]), default=spec_field.default, show_default=True, help=meta["help"])
        elif kind in (int, float):
            option = click.option(*names, type=kind, default=spec_field.default, show_default=True, help=meta["help"])
        else:
            option = click.option(*names, default=spec_field.default, help=meta["help"])
        command = option(command)
    return command


def _moved_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """The first release's flags for settings that became strategy options: a one-line error naming the new form."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            strategy, name = ftreg.MOVED_TO_OPTIONS[param.name or ""]
            raise UserError(f"--{(param.name or '').replace('_', '-')} is now an option of the {strategy} strategy: use -o {name}={value}")

    for old in ftreg.MOVED_TO_OPTIONS:
        command = click.option("--" + old.replace("_", "-"), old, hidden=True, expose_value=False, callback=refuse)(command)
    return command


class TrainCommand(click.Command):
    """``ftreg train --strategy S --help`` also lists the options of strategy S."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        strategy = ctx.meta.get("ftreg.strategy")
        names = [strategy] if strategy in ftreg.training_strategies() else sorted(ftreg.training_strategies())
        formatter.write("\n" + "\n\n".join(_strategy_options_text(name) for name in names) + "\n")


def _remember_strategy(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    ctx.meta["ftreg.strategy"] = value
    return value


@cli.command(cls=TrainCommand)
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML or YAML file of settings (keys as in --print-config); flags override it.")
@click.option("--from", "parent", metavar="REF", help="Re-run the settings of this version (override any of them with flags) and record it as the parent.")
@click.option("--print-config", is_flag=True, help="Print the effective settings as TOML and exit.")
@click.option("--resume", "resume_run", metavar="RUN", help="Continue an interrupted run (see `ftreg runs`) from its newest complete checkpoint.")
@click.option("-o", "--option", "strategy_options", multiple=True, callback=_parse_pairs("KEY=VALUE"), metavar="KEY=VALUE", help="A setting of the strategy's own (see below). Repeatable.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the new reference (and errors): no bar, notes or summary.")
@click.option("-v", "--verbose", is_flag=True, help="Show everything the libraries say: warnings, log records, loading bars.")
@_spec_options
@_moved_flags
@click.pass_context
def train(
    ctx: click.Context,
    config_file: Path | None,
    parent: str | None,
    print_config: bool,
    resume_run: str | None,
    strategy_options: dict[str, str],
    quiet: bool,
    verbose: bool,
    **flags: Any,
) -> None:
    """Train a model and publish it as the next version of --name."""
    registry: Registry = ctx.obj
    if quiet and verbose:
        raise UserError("--quiet and --verbose contradict each other; pass one")
    if verbose:
        ftreg.show_everything()
    notify = (lambda note: None) if quiet else (lambda note: click.echo(note, err=True))
    # Training libraries print progress and logs to stdout; stdout is kept for the new reference alone,
    # so that `ref=$(ftreg train ...)` works.
    if resume_run:
        with contextlib.redirect_stdout(sys.stderr):
            entry = ftreg.resume(resume_run, registry=registry, notify=notify, show_progress=not quiet)
    else:
        given = {key: value for key, value in flags.items() if ctx.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
        spec = ftreg.settings(given, options=strategy_options, config_file=config_file, parent=parent, registry=registry)
        if print_config:
            click.echo(spec.to_toml(), nl=False)
            return
        with contextlib.redirect_stdout(sys.stderr):
            entry = ftreg.train(spec, registry=registry, parent=parent, notify=notify, show_progress=not quiet)
    if entry is not None:
        notify(_summary(entry))
        click.echo(entry.ref)


def _summary(entry: ftreg.Entry) -> str:
    """The run in one line: losses, perplexity, throughput, time and where the version is."""
    m = entry.metrics
    parts = [f"{key} {m[key]:.4g}" for key in ("train_loss", "eval_loss") if key in m]
    if "eval_loss" in m:
        parts.append(f"eval perplexity {math.exp(min(m['eval_loss'], 50)):.4g}")
    if "train_tokens_per_s" in m:
        parts.append(f"{m['train_tokens_per_s']:,.0f} tokens/s")
    if "train_runtime_s" in m:
        parts.append(f"{m['train_runtime_s']:.0f} s")
    return f"published {entry.ref} ({entry.path}): " + ", ".join(parts)


@cli.command()
@click.argument("prompt", nargs=-1)
@click.option("--adapter", help="Registry adapter (or checkpoint) to generate with, e.g. support-v2.")
@click.option("--base", help="Base to generate with: alone, or instead of the adapter's recorded base.")
@click.option("--format", "prompt_format", help="Render prompts as this dataset format does (default: as the adapter's training data was).")
@click.option("--raw", is_flag=True, help="Send the prompt as it is, without any template.")
@click.option("--system", help="Chat-trained versions: the system message (default: the one the training data used; \"\" for none).")
@click.option("--input", "input_", metavar="TEXT", help="Alpaca-trained versions: fill the prompt's input section with TEXT.")
@click.option("--messages", type=click.Path(path_type=Path), metavar="FILE", help='Chat-trained versions: a JSON list of {"role", "content"} messages, the last from the user; replaces PROMPT.')
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), metavar="FILE", help='A file of prompts: one per line, or in a .jsonl file one {"prompt": ...} object per line.')
@click.option("--max-new-tokens", type=int, default=GenerationOptions.max_new_tokens, show_default=True)
@click.option("--temperature", type=float, default=GenerationOptions.temperature, show_default=True)
@click.option("--top-p", type=float, default=GenerationOptions.top_p, show_default=True)
@click.option("--top-k", type=int, default=GenerationOptions.top_k, show_default=True)
@click.option("--repetition-penalty", type=float, default=GenerationOptions.repetition_penalty, show_default=True)
@click.option("--greedy", is_flag=True, help="Always take the most likely token (deterministic).")
@click.option("--seed", type=int, help="Seed for sampling.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"prompt": ..., "completion": ..., "model": ...}, ...] once all are done.')
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one such JSON object per line, each as soon as its completion is done.")
@pass_registry
def generate(
    registry: Registry,
    prompt: tuple[str, ...],
    adapter,
    base,
    prompt_format,
    raw,
    system,
    input_,
    messages: Path | None,
    prompts_file: Path | None,
    as_json,
    as_jsonl,
    **sampling,
) -> None:
    """Generate a completion for each PROMPT, rendered the way the adapter's training data was.

    Prints the completion alone; for several prompts, each under a "==> PROMPT <==" line.
    """
    if as_json and as_jsonl:
        raise UserError("--json and --jsonl are two shapes of one output; pass one")
    prompts = [*prompt, *(_prompts_in(prompts_file) if prompts_file else [])]
    dialogue = _messages_in(messages) if messages else None
    if dialogue is not None and prompts:
        raise UserError("--messages is one whole dialogue; pass it without PROMPT or --prompts")
    if dialogue is None and not prompts:
        raise UserError("nothing to generate: pass a PROMPT, --prompts FILE or --messages FILE")
    options = GenerationOptions(**sampling)
    extras = {"raw": raw, "system": system, "input": input_}
    requests = [{"prompt": text, **extras} for text in prompts] if dialogue is None else [{"messages": dialogue, **extras}]
    prompter = ftreg.prompter(adapter, base=base, prompt_format=prompt_format, registry=registry)
    if dialogue is not None:  # whether this model renders dialogues at all, before what this one holds
        prompter.segments(**{**requests[0], "messages": [{"role": "user", "content": "?"}]})
    for request in requests:  # every misuse is reported before the model loads
        try:
            prompter.segments(**request)
        except FtregError as error:
            raise (FtregError(f"{messages}: {error}") if dialogue is not None else error) from None
    # One model, a few answers, then exit: most of a transformers load would be spent importing it.
    composed = ftreg.load(adapter, base=base, prompt_format=prompt_format, lean=True, registry=registry)
    results = []
    for number, request in enumerate(requests, start=1):
        shown = request["prompt"] if dialogue is None else dialogue[-1]["content"]
        result = {"prompt": shown, "completion": composed.generate(options=options, **request), "model": composed.description}
        if as_jsonl:
            click.echo(json.dumps(result, ensure_ascii=False))
        elif not as_json:
            if len(requests) > 1:
                click.echo(("\n" if number > 1 else "") + f"==> {' '.join(shown.split())} <==")
            click.echo(result["completion"])
        results.append(result)
    if as_json:
        _echo_json(results)


def _prompts_in(path: Path) -> list[str]:
    """The prompts of a --prompts file: one per non-blank line, or ``{"prompt": ...}`` per line of a .jsonl or .ndjson file."""
    text = _read_input(path, "--prompts")
    prompts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            prompts.append(line.strip())
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise FtregError(f"{path}:{number}: invalid JSON: {error.msg} (a .jsonl file of prompts holds one {{\"prompt\": ...}} object per line)") from error
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise FtregError(f'{path}:{number}: expected an object whose "prompt" holds text; got {line.strip()[:60]}')
        prompts.append(record["prompt"])
    if not prompts:
        raise FtregError(f"{path}: the file holds no prompts (--prompts)")
    return prompts


def _messages_in(path: Path) -> list[Any]:
    """The dialogue of a --messages file: a JSON list of messages (what is in them, the format checks)."""
    try:
        messages = json.loads(_read_input(path, "--messages"))
    except json.JSONDecodeError as error:
        raise FtregError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg} (--messages)") from error
    if not isinstance(messages, list) or not messages:
        got = "an empty list" if messages == [] else f"a JSON {type(messages).__name__}"
        raise FtregError(f'{path}: expected a JSON list of {{"role", "content"}} messages, the last from the user; got {got} (--messages)')
    return messages


def _read_input(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise FtregError(f"{path}: no such file ({flag})") from error
    except (OSError, UnicodeDecodeError) as error:
        raise FtregError(f"{path}: cannot read it as UTF-8 text: {getattr(error, 'strerror', None) or error} ({flag})") from error


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (127.0.0.1: this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--preload", help="Versions to load before the first request, comma-separated: support-v2,faq@prod.")
@click.option("--max-adapters", type=click.IntRange(min=1), default=8, show_default=True, help="Adapters kept loaded per base; the least recently used is unloaded.")
@click.option("--max-bases", type=click.IntRange(min=1), default=1, show_default=True, help="Bases kept loaded; a request needing another is refused.")
@click.option("--api-key", envvar="FTREG_API_KEY", help="Require `Authorization: Bearer KEY` on every request (or set FTREG_API_KEY).")
@click.option("--batch-window-ms", type=click.FloatRange(min=0), default=25.0, show_default=True, help="Longest a batch waits for the clients it has been serving.")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True, help="Most requests generated in one batch.")
@click.option("--max-queue", type=click.IntRange(min=0), default=64, show_default=True, help="Requests allowed to wait; past it a request gets 429.")
@pass_registry
def serve(registry: Registry, host: str, port: int, preload: str | None, max_adapters: int, max_bases: int, api_key: str | None,
          batch_window_ms: float, max_batch: int, max_queue: int) -> None:
    """Serve every version over an OpenAI-compatible API: /v1/completions, /v1/chat/completions, /v1/models."""
    refs = [ref.strip() for ref in (preload or "").split(",") if ref.strip()]
    ftreg.serve(host=host, port=port, preload=refs, max_adapters=max_adapters, max_bases=max_bases, api_key=api_key,
                batch_window_ms=batch_window_ms, max_batch=max_batch, max_queue=max_queue, registry=registry, notify=lambda note: click.echo(note, err=True))


@cli.command()
@click.argument("ref")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--merge", is_flag=True, help="Merge an adapter into its base: a full model for plain AutoModelForCausalLM.")
@pass_registry
def export(registry: Registry, ref: str, directory: Path, merge: bool) -> None:
    """Write a version to DIRECTORY in standard Hugging Face layout, for use without ftreg."""
    click.echo(ftreg.export(ref, directory, merge=merge, registry=registry, notify=lambda note: click.echo(note, err=True)))


@cli.command()
@click.argument("ref")
@click.option("--repo", "repo_id", required=True, metavar="OWNER/NAME", help="Hub repository (created if needed).")
@click.option("--private", is_flag=True, help="Create the repository (and a pushed base's) as private.")
@click.option("--base-repo", metavar="OWNER/NAME", help="For an adapter whose base is only in this registry: push the base there too, and name it as the adapter's base.")
@click.option("--merge", is_flag=True, help="Push an adapter merged into its base: a standalone model for plain AutoModelForCausalLM.")
@pass_registry
def push(registry: Registry, ref: str, repo_id: str, private: bool, base_repo: str | None, merge: bool) -> None:
    """Upload a version to the Hugging Face Hub as one commit tagged vN; prints its URL."""
    click.echo(ftreg.push(ref, repo_id, private=private, base_repo=base_repo, merge=merge, registry=registry, notify=lambda note: click.echo(note, err=True)))


@cli.command()
@click.argument("repo", metavar="OWNER/NAME[@REVISION]")
@click.option("--name", required=True, help="Local registry name; the download becomes its next version.")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Also download pickle-format weights (pytorch_model.bin, adapter_model.bin) and convert them to safetensors, read with torch.load(weights_only=True): tensors only. No pickle is kept.",
)
@pass_registry
def pull(registry: Registry, repo: str, name: str, trust_pickle: bool) -> None:
    """Download a Hub repository, check it, and register it as a new local version."""
    entry = ftreg.pull(repo, name, trust_pickle=trust_pickle, registry=registry, notify=lambda note: click.echo(note, err=True))
    click.echo(entry.ref)


@cli.group()
def data() -> None:
    """Inspect datasets before spending time on training."""


@data.command(name="check")
@click.argument("dataset")
@click.option("--format", "format_", help="Dataset format. Default: detected from the content.")
@click.option("--column", "columns", multiple=True, callback=_parse_pairs("FIELD=NAME"), metavar="FIELD=NAME", help="Read FIELD from column/key NAME. Repeatable.")
@click.option("--base", help="Whose tokenizer counts the tokens. Default: the embedded tiny-gpt2.")
@click.option("--max-length", type=int, default=TrainSpec.max_length, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_registry
def data_check(registry: Registry, dataset: str, format_, columns, base, max_length: int, as_json: bool) -> None:
    """Describe DATASET as training would see it; exit code 0 when it is trainable."""
    report = ftreg.check_dataset(dataset, format=format_, columns=columns, base=base, max_length=max_length, registry=registry)
    if as_json:
        _echo_json(report)
        return
    tokens = report["tokens"]
    duplicates = report["duplicate_lines"]
    lines = [
        ("file", f"{report['path']}" + (f" ({dataset})" if dataset != report["path"] else "")),
        ("format", report["format"] + (" (detected)" if report["detected"] else "")),
        ("examples", f"{report['examples']}" + (f" (warning: {len(duplicates)} duplicates, lines {', '.join(map(str, duplicates[:10]))})" if duplicates else "")),
        ("tokens", f"min {tokens['min']}  median {tokens['median']}  p95 {tokens['p95']}  max {tokens['max']}  (tokenizer of {report['tokenizer']})"),
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
    click.echo(ftreg.init_base(rebuild=rebuild, registry=registry).ref)


_warnings_as_lines()  # before plugins load: a skipped plugin or a stray allow-list entry is one line
ftreg.add_plugin_commands(cli)


def main() -> None:
    cli()
