import json
import textwrap

import pluggy
import pytest
from conftest import run_ftreg

from ftreg import hookimpl, plugins
from ftreg.formats import DatasetFormat


def test_builtin_plugins_are_registered_like_third_party_ones():
    plugins.load_plugins()
    names = {name for name, _ in plugins.pm.list_name_plugin()}
    assert set(plugins.DEFAULT_PLUGINS) <= names
    assert "instruction" in plugins.dataset_formats()
    assert plugins.training_strategies()["lora8bit"].kind == "adapter"


def test_check_pending_passes_for_all_loaded_plugins():
    plugins.load_plugins()
    plugins.pm.check_pending()


def test_check_pending_catches_a_misspelled_hook(register_plugin):
    class Misspelled:
        @hookimpl
        def register_dataset_format(self, register):  # missing the final "s"
            pass

    register_plugin(Misspelled(), "misspelled")
    with pytest.raises(pluggy.PluginValidationError, match="register_dataset_format"):
        plugins.pm.check_pending()


def test_a_plugin_registered_for_one_test(register_plugin):
    class Shouting(DatasetFormat):
        name = "shouting"

    class Plugin:
        @hookimpl
        def register_dataset_formats(self, register):
            register(Shouting())

    register_plugin(Plugin(), "shouting-plugin")
    assert isinstance(plugins.get_dataset_format("shouting"), Shouting)


def test_a_plugin_raising_in_its_hook_is_isolated(register_plugin):
    class Exploding:
        @hookimpl
        def register_training_strategies(self, register):
            raise RuntimeError("boom")

    register_plugin(Exploding(), "exploding")
    assert "lora8bit" in plugins.training_strategies()
    info = {i.name: i for i in plugins.plugin_infos()}["exploding"]
    assert info.error == "register_training_strategies: RuntimeError: boom"
    assert info.hooks == ("register_training_strategies",)


@pytest.fixture
def site(tmp_path):
    """A directory of installed third-party plugin distributions, put on PYTHONPATH."""
    root = tmp_path / "site"
    root.mkdir()

    def install(dist: str, module: str, source: str, version: str = "1.0"):
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[ftreg]\n{module} = {module}\n")

    install("ftreg-hello", "ftreg_hello", """
        import click
        from ftreg import hookimpl
        from ftreg.formats import DatasetFormat

        class Hello(DatasetFormat):
            name = "hello"
            description = "greetings"

        @hookimpl
        def register_dataset_formats(register):
            register(Hello())

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                "Say hello."
                click.echo("hello from a plugin")
        """, version="0.3")
    install("ftreg-broken", "ftreg_broken", "raise ImportError('needs a missing library')\n")
    install("ftreg-badhook", "ftreg_badhook", """
        from ftreg import hookimpl

        @hookimpl
        def register_training_strategies(register):
            raise ValueError("bad registration")
        """)
    return {"PYTHONPATH": str(root), "FTREG_LOAD_PLUGINS": "ftreg-hello,ftreg-broken,ftreg-badhook"}


def test_entry_point_plugins_load_and_broken_ones_are_reported(site):
    result = run_ftreg("plugins", "--json", env=site)
    assert result.returncode == 0, result.stderr
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["ftreg_hello"] == {"name": "ftreg_hello", "version": "0.3", "hooks": ["register_commands", "register_dataset_formats"], "error": None}
    assert infos["ftreg_broken"]["error"] == "ImportError: needs a missing library"
    assert infos["ftreg_badhook"]["error"] == "register_training_strategies: ValueError: bad registration"
    assert infos["ftreg.default_plugins.strategies.lora8bit"]["error"] is None
    table = run_ftreg("plugins", env=site).stdout
    assert "BROKEN: ImportError: needs a missing library" in table
    assert [line.split()[0] for line in table.split("Dataset formats:\n")[1].split("\nTraining strategies:")[0].splitlines()] == [
        "alpaca", "chat", "csv-qa", "hello", "instruction", "prompt-completion", "sharegpt", "text"]
    assert run_ftreg("hello", env=site).stdout == "hello from a plugin\n"
    assert run_ftreg("list", env=site).returncode == 0  # broken plugins never break other commands


def test_allow_list_limits_third_party_plugins(site):
    result = run_ftreg("plugins", "--json", env={**site, "FTREG_LOAD_PLUGINS": "ftreg-hello"})
    names = {i["name"] for i in json.loads(result.stdout)}
    assert "ftreg_hello" in names and "ftreg_broken" not in names and "ftreg_badhook" not in names
    assert set(plugins.DEFAULT_PLUGINS) <= names  # built-ins always load
    none = run_ftreg("plugins", "--json", env={**site, "FTREG_LOAD_PLUGINS": ""})
    assert {i["name"] for i in json.loads(none.stdout)} == set(plugins.DEFAULT_PLUGINS)
