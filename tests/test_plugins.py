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
    install("ftreg-half", "ftreg_half", """
        import click
        from ftreg import hookimpl
        from ftreg.formats import DatasetFormat

        class Half(DatasetFormat):
            name = "half"
            description = "registered before the plugin fails"

        @hookimpl
        def register_dataset_formats(register):
            register(Half())

        @hookimpl
        def register_training_strategies(register):
            raise RuntimeError("half done")

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def halfway():
                click.echo("a broken plugin's command ran")
        """)
    install("ftreg-future", "ftreg_future", """
        from ftreg import hookimpl
        from ftreg.formats import DatasetFormat

        FTREG_PLUGIN_API = 99

        class Future(DatasetFormat):
            name = "future"
            description = "written for a later ftreg"

        @hookimpl
        def register_dataset_formats(register):
            register(Future())
        """)
    return {"PYTHONPATH": str(root), "FTREG_LOAD_PLUGINS": "ftreg-hello,ftreg-broken,ftreg-badhook,ftreg-half,ftreg-future"}


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


def test_allow_list_takes_the_distribution_or_the_plugin_name_and_warns_of_a_stray_entry(site):
    for allow in ("ftreg-hello", "ftreg_hello", "FTREG.Hello"):  # as pip spells it, as `ftreg plugins` shows it
        result = run_ftreg("plugins", "--json", env={**site, "FTREG_LOAD_PLUGINS": allow})
        assert "ftreg_hello" in {i["name"] for i in json.loads(result.stdout)}, allow
        assert "FTREG_LOAD_PLUGINS" not in result.stderr
    stray = run_ftreg("plugins", "--json", env={**site, "FTREG_LOAD_PLUGINS": "ftreg-hello,mdfaq"})
    assert stray.returncode == 0 and stray.stderr.count("\n") == 1
    assert "FTREG_LOAD_PLUGINS names mdfaq, which no installed plugin is" in stray.stderr


def test_a_plugin_that_fails_anywhere_is_broken_as_a_whole(site, tmp_path):
    infos = {i["name"]: i for i in json.loads(run_ftreg("plugins", "--json", env=site).stdout)}
    assert infos["ftreg_half"]["error"] == "register_training_strategies: RuntimeError: half done"
    table = run_ftreg("plugins", env=site).stdout
    assert " half " not in table.split("Dataset formats:\n")[1].split("\nTraining strategies:")[0]
    data = tmp_path / "faq.md"
    data.write_text("## How do I return an item?\nFrom the Orders page.\n")
    named = run_ftreg("data", "check", data, "--format", "half", env=site)
    assert named.returncode == 2
    assert "format 'half' comes from plugin ftreg_half, which is broken (register_training_strategies: RuntimeError: half done)" in named.stderr
    detected = run_ftreg("data", "check", data, env=site)  # not read as plain text while a plugin that may read it is broken
    assert detected.returncode == 2 and "ftreg_half" in detected.stderr and "--format text" in detected.stderr
    assert run_ftreg("halfway", env=site).returncode == 2  # its command is not added either


def test_a_plugin_for_another_plugin_api_is_skipped_with_one_warning(site):
    result = run_ftreg("plugins", "--json", env=site)
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["ftreg_future"]["error"] == f"skipped: written for plugin API 99; this ftreg has {plugins.PLUGIN_API}"
    assert "future" not in run_ftreg("plugins", env=site).stdout.split("Dataset formats:")[1]
    assert "ftreg_future is skipped: written for plugin API 99" in run_ftreg("list", env=site).stderr
