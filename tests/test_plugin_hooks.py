"""The plugin contract as a third-party author meets it: options, lifecycle and registry events, call order, isolation."""

import json
import warnings

import pytest

import ftreg

from conftest import publish_files, write_json
from ftreg import ConfigError, PluginWarning, hookimpl, plugins
from ftreg.formats import DatasetFormat


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "response": f"answer {i}"} for i in range(6)])


def test_a_strategy_receives_its_options_from_o_and_from_config(cli_run, fake_strategies, embedded_base, registry, dataset, tmp_path):
    from ftreg.card import CARD

    result = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "fa", "-o", "loss=0.25")
    assert result.exit_code == 0, result.output
    entry = registry.resolve("fa-v1")
    assert entry.config["options"] == {"loss": 0.25, "steps": 3, "poison": False}  # every option, the default included
    assert entry.metrics["train_loss"] == 0.25  # the option was applied, not only recorded
    config = tmp_path / "run.toml"
    config.write_text(f'strategy = "fake-adapter"\ndataset = "{dataset}"\nname = "fa"\n[fake-adapter]\nloss = 0.5\nsteps = 2\n')
    assert cli_run("train", "--config", config).exit_code == 0
    second = registry.resolve("fa-v2")
    assert second.config["options"] == {"loss": 0.5, "steps": 2, "poison": False} and second.metrics["train_loss"] == 0.5
    # -o overrides the file's table; both appear in show and in the model card.
    assert cli_run("train", "--config", config, "-o", "steps=4").exit_code == 0
    assert registry.resolve("fa-v3").config["options"] == {"loss": 0.5, "steps": 4, "poison": False}
    shown = json.loads(cli_run("show", "fa-v3", "--json").stdout)
    assert shown["config"]["options"] == {"loss": 0.5, "steps": 4, "poison": False}
    assert '"options": {"loss": 0.5, "poison": false, "steps": 4}' in cli_run("show", "fa-v3").stdout
    card = (registry.resolve("fa-v3").path / CARD).read_text()
    assert "| `options.steps` | `4` |" in card and "| `options.loss` | `0.5` |" in card


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "los=1"], "strategy 'fake-adapter' has no option 'los' (did you mean 'loss'?)"),
        (["-o", "steps=many"], "option 'steps' of strategy 'fake-adapter' must be an integer, got 'many'"),
        (["-o", "steps=0"], "fake option steps must be >= 1, got 0"),
        (["-o", "nokey"], "expected KEY=VALUE, got 'nokey'"),
        (["--lora-r", "4"], "--lora-r is now an option of the lora8bit strategy: use -o r=4"),
        (["--patience", "2"], "--patience is now an option of the scratch strategy: use -o patience=2"),
    ],
)
def test_bad_options_are_one_line_errors_before_anything_loads(cli_run, fake_strategies, registry, dataset, args, message):
    result = cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "x", *args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert not registry.exists("x") and not (registry.home / "store").exists()


def test_options_of_another_strategy_in_a_config_file_are_refused(cli_run, dataset, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'strategy = "lora8bit"\ndataset = "{dataset}"\nname = "x"\n[scratch]\npatience = 2\n')
    result = cli_run("train", "--config", config, "--print-config")
    assert result.exit_code == 2 and "the [scratch] table sets options of strategy 'scratch', but the strategy is 'lora8bit'" in result.stderr
    config.write_text(f'strategy = "lora8bit"\ndataset = "{dataset}"\nname = "x"\nlora_r = 4\n')
    result = cli_run("train", "--config", config, "--print-config")
    assert result.exit_code == 2 and "'lora_r' is now an option of the lora8bit strategy" in result.stderr


def test_strategy_help_lists_its_options(cli_run, fake_strategies):
    help_text = cli_run("train", "--strategy", "fake-adapter", "--help").stdout
    assert "Options of strategy fake-adapter" in help_text and "loss (a number, default 1.0)" in help_text
    assert "Options of strategy lora8bit" not in help_text
    listed = json.loads(cli_run("plugins", "--strategy", "lora8bit", "--json").stdout)
    assert [item["name"] for item in listed] == ["r", "alpha", "dropout"] and all(item["help"] for item in listed)


def test_a_version_written_by_ftreg_0_1_still_re_runs(cli_run, registry):
    """A manifest written by ftreg 0.1 (tests/fixtures/ftreg-0.1.0) loads; --from upgrades its settings."""
    from pathlib import Path

    old = json.loads((Path(__file__).parent / "fixtures" / "ftreg-0.1.0" / "manifest.json").read_text())
    publish_files(registry, "old", kind=old["kind"], base=old["base"], strategy=old["strategy"], config=old["config"], metrics=old["metrics"])
    assert cli_run("show", "old-v1").exit_code == 0
    result = cli_run("train", "--from", "old-v1", "--print-config")
    assert result.exit_code == 0, result.output
    assert "[lora8bit]\nr = 8\nalpha = 16\ndropout = 0.05\n" in result.stdout
    assert "patience" not in result.stdout and "init" not in result.stdout  # 0.1 recorded them for lora8bit, which never used them
    old["config"]["from_the_future"] = 1
    publish_files(registry, "old", kind="adapter", config=old["config"])
    result = cli_run("train", "--from", "old-v2", "--print-config")
    assert result.exit_code == 0 and "warning: old-v2's recorded settings: unknown setting 'from_the_future' ignored" in result.stderr


def test_an_old_run_record_resumes_with_upgraded_settings():
    from pathlib import Path

    from ftreg import TrainSpec
    from ftreg.training.config import upgrade_settings

    record = json.loads((Path(__file__).parent / "fixtures" / "ftreg-0.1.0" / "run.json").read_text())
    spec = TrainSpec.from_dict(upgrade_settings(record["settings"], "run"))
    assert spec.options == {"r": 8, "alpha": 16, "dropout": 0.05} and spec.save_steps == 1


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def on_train_start(self, job):
        self.events.append(("start", job.spec.name, job.options.loss))

    @hookimpl
    def on_train_log(self, job, step, metrics):
        self.events.append(("log", step, metrics["loss"]))

    @hookimpl
    def on_train_end(self, job, metrics):
        self.events.append(("end", metrics["train_loss"]))

    @hookimpl
    def version_published(self, entry):
        self.events.append(("published", entry.ref))

    @hookimpl
    def alias_moved(self, name, alias, entry):
        self.events.append(("alias", f"{name}@{alias}", entry.ref if entry else None))

    @hookimpl
    def version_removed(self, entry):
        self.events.append(("removed", entry.ref))


class Raising:
    @hookimpl
    def version_published(self, entry):
        raise RuntimeError("webhook down")

    @hookimpl
    def on_train_log(self, step):
        raise ValueError("bad logger")


def test_lifecycle_and_registry_events_reach_plugins_and_a_raising_one_loses_nothing(cli_run, fake_strategies, register_plugin, embedded_base, registry, dataset):
    recorder = Recorder()
    register_plugin(recorder, "recorder")
    register_plugin(Raising(), "raising")
    result = cli_run("train", "--strategy", "fake-checkpoint", "--dataset", dataset, "--name", "ev", "-o", "loss=0.5", "-o", "steps=2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ev-v1\n"
    assert recorder.events == [("start", "ev", 0.5), ("log", 1, 0.5), ("log", 2, 0.5), ("end", 0.5), ("published", "ev-v1")]
    assert "warning: plugin raising failed in version_published: RuntimeError: webhook down" in result.stderr
    assert "warning: plugin raising failed in on_train_log: ValueError: bad logger" in result.stderr
    assert registry.resolve("ev-v1").manifest["files"]  # published whole despite the raising plugin
    recorder.events.clear()
    assert cli_run("tag", "ev-v1", "prod").exit_code == 0
    assert cli_run("tag", "--rm", "ev@prod").exit_code == 0
    assert cli_run("tag", "ev-v1", "prod").exit_code == 0
    assert cli_run("rm", "ev-v1", "--force").exit_code == 0
    assert recorder.events == [("alias", "ev@prod", "ev-v1"), ("alias", "ev@prod", None), ("alias", "ev@prod", "ev-v1"),
                               ("alias", "ev@prod", None), ("removed", "ev-v1")]


def test_the_api_warns_with_the_plugin_name(fake_strategies, register_plugin, registry):
    register_plugin(Raising(), "raising")
    with pytest.warns(PluginWarning, match="plugin raising failed in version_published: RuntimeError: webhook down"):
        entry = publish_files(registry, "w")
    assert registry.resolve("w").ref == entry.ref


def test_hooks_are_called_in_pluggys_order(register_plugin):
    calls = []

    class Early:
        @hookimpl(tryfirst=True)
        def version_removed(self, entry):
            calls.append("early")

    class Late:
        @hookimpl(trylast=True)
        def version_removed(self, entry):
            calls.append("late")

    class Plain:
        @hookimpl
        def version_removed(self, entry):
            calls.append("plain")

    register_plugin(Late(), "late")
    register_plugin(Early(), "early")
    register_plugin(Plain(), "plain")
    plugins.call("version_removed", entry=None)
    assert calls == ["early", "plain", "late"]
    calls.clear()
    plugins.pm.hook.version_removed(entry=None)  # pluggy's own call gives the same order
    assert calls == ["early", "plain", "late"]


def test_hook_wrappers_are_refused(register_plugin):
    class Wrapper:
        @hookimpl(wrapper=True)
        def version_removed(self, entry):
            return (yield)

    register_plugin(Wrapper(), "wrapper")
    info = {i.name: i for i in plugins.plugin_infos()}["wrapper"]
    assert "hook wrappers are not supported (version_removed)" in info.error
    assert plugins.pm.get_plugin("wrapper") is None


def test_a_failed_registration_breaks_the_whole_plugin(register_plugin):
    class Half(DatasetFormat):
        name = "half"

    class Plugin:
        @hookimpl
        def register_dataset_formats(self, register):
            register(Half())
            raise RuntimeError("second format broke")

        @hookimpl
        def register_training_strategies(self, register):
            from ftreg.testing import FakeStrategy

            register(FakeStrategy("adapter"))

    register_plugin(Plugin(), "half-broken")
    assert "half" not in plugins.dataset_formats()  # registered before the raise, dropped with the call
    assert "fake-adapter" not in plugins.training_strategies()  # and nothing else of a broken plugin is used
    info = {i.name: i for i in plugins.plugin_infos()}["half-broken"]
    assert info.error == "register_dataset_formats: RuntimeError: second format broke"
    with pytest.raises(ftreg.UnknownPlugin, match=r"training strategy 'fake-adapter' comes from plugin half-broken, which is broken \(register_dataset_formats"):
        plugins.get_training_strategy("fake-adapter")


def test_a_plugin_cannot_take_a_builtin_name(register_plugin):
    class Impostor(DatasetFormat):
        name = "instruction"

    class Plugin:
        @hookimpl(tryfirst=True)
        def register_dataset_formats(self, register):
            register(Impostor())

    register_plugin(Plugin(), "impostor")
    assert not isinstance(plugins.get_dataset_format("instruction"), Impostor)
    info = {i.name: i for i in plugins.plugin_infos()}["impostor"]
    assert "dataset format 'instruction' is already registered by ftreg.default_plugins.formats.instruction" in info.error


def test_a_plugin_source_and_base_resolver(register_plugin, embedded_base, registry, tmp_path, cli_run, dataset):
    from ftreg.contract import DatasetSource

    class Shelf(DatasetSource):
        name = "shelf"

        def claims(self, text):
            return text.startswith("shelf:")

        def resolve(self, text):
            return dataset

    class Plugin:
        @hookimpl
        def register_dataset_sources(self, register):
            register(Shelf())

        @hookimpl
        def resolve_base(self, reference):
            return embedded_base.path if reference == "mycloud://tiny" else None

    register_plugin(Plugin(), "shelf")
    report = json.loads(cli_run("data", "check", "shelf:anything", "--base", "mycloud://tiny", "--json").stdout)
    assert report["examples"] == 6 and report["tokenizer"] == "mycloud://tiny"


def test_tracing_prints_each_hook_call(register_plugin, capsys, monkeypatch):
    monkeypatch.setenv("FTREG_TRACE_PLUGINS", "1")

    class Plain:
        @hookimpl
        def version_removed(self, entry):
            pass

    register_plugin(Plain(), "plain")
    plugins.call("version_removed", entry=None)
    err = capsys.readouterr().err
    assert "ftreg trace: version_removed(entry) -> [plain]" in err and "ftreg trace:   plain: ok" in err


def test_options_dataclass_validation_names_the_field():
    from ftreg.default_plugins.strategies.lora8bit import LoraOptions

    with pytest.raises(ConfigError, match="lora8bit option dropout must be in"):
        LoraOptions.from_dict({"dropout": "1.5"}, "lora8bit")
    assert LoraOptions.from_dict({"r": "4"}, "lora8bit").r == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert LoraOptions.from_dict({}, "lora8bit") == LoraOptions()


def test_an_installed_plugin_with_a_bad_hook_signature_is_broken_not_fatal(tmp_path):
    import textwrap

    from conftest import run_ftreg

    root = tmp_path / "site"
    root.mkdir()
    (root / "ftreg_badsig.py").write_text(textwrap.dedent("""
        from ftreg import hookimpl

        @hookimpl
        def version_published(entry, something_else):
            pass
        """))
    info = root / "ftreg_badsig-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ftreg-badsig\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ftreg]\nftreg_badsig = ftreg_badsig\n")
    env = {"PYTHONPATH": str(root), "FTREG_LOAD_PLUGINS": "ftreg-badsig"}
    result = run_ftreg("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    [info] = [i for i in json.loads(result.stdout) if i["name"] == "ftreg_badsig"]
    assert "PluginValidationError" in info["error"] and "something_else" in info["error"]
    assert run_ftreg("--help", env=env).returncode == 0


def test_an_option_with_a_table_default_is_described(register_plugin):
    from dataclasses import dataclass

    from ftreg import StrategyOptions, TrainingStrategy, option

    @dataclass(frozen=True)
    class TableOptions(StrategyOptions):
        weights: dict = option({"a": 1}, "Per-source weights.")

    class TableStrategy(TrainingStrategy):
        name = "tabled"
        options_class = TableOptions

    assert TableOptions.describe()[0]["default"] == {"a": 1}
    json.dumps(TableOptions.describe())  # what `ftreg plugins --strategy S --json` prints
