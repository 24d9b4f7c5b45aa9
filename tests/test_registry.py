import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from conftest import publish_files, safetensors_bytes
from ftreg.errors import InvalidName, RegistryConflict, UnknownReference
from ftreg.registry import Registry, parse_ref, validate_name
from ftreg.registry import store as store_module
from ftreg.registry.migrations import MIGRATIONS
from ftreg.registry.store import STALE_AFTER_S


def test_publish_resolve_and_manifest(registry):
    entry = publish_files(
        registry, "support", kind="adapter", base="tiny-gpt2-v1", strategy="lora8bit",
        dataset={"fingerprint": "sha256:abc"}, config={"lr": 0.1}, metrics={"eval_loss": 1.5},
        plugin_versions={"strategy:lora8bit": "0.1.0"},
    )
    assert entry.ref == "support-v1"
    assert (entry.path / "adapter_model.safetensors").read_bytes() == safetensors_bytes("weights of support")
    manifest = entry.manifest
    assert manifest["version"] == 1 and manifest["kind"] == "adapter" and manifest["base"] == "tiny-gpt2-v1"
    assert manifest["files"]["adapter_model.safetensors"]["size"] == len(safetensors_bytes("weights of support"))
    assert len(manifest["files"]["adapter_model.safetensors"]["sha256"]) == 64
    assert manifest["dataset"] == {"fingerprint": "sha256:abc"} and manifest["config"] == {"lr": 0.1}
    assert manifest["ftreg_version"] and manifest["created_at"]
    assert (entry.path / "manifest.json").is_file()
    assert registry.resolve("support").ref == "support-v1"
    assert registry.resolve("support-v1").manifest == manifest


def test_versions_count_up_and_latest_resolves_to_newest(registry):
    refs = [publish_files(registry, "faq").ref for _ in range(3)]
    assert refs == ["faq-v1", "faq-v2", "faq-v3"]
    assert registry.resolve("faq").version == 3
    assert [e.ref for e in registry.entries()] == refs
    publish_files(registry, "other")
    assert [e.ref for e in registry.entries("faq")] == refs


def test_rm_never_reuses_a_version_number(registry):
    publish_files(registry, "faq")
    publish_files(registry, "faq")
    removed = registry.remove("faq-v2")
    assert not removed.path.exists()
    assert publish_files(registry, "faq").ref == "faq-v3"
    with pytest.raises(UnknownReference, match="faq has versions 1, 3"):
        registry.resolve("faq-v2")


def test_tag_moves_alias_and_keeps_history(registry):
    publish_files(registry, "support")
    publish_files(registry, "support")
    registry.tag("support-v1", "prod")
    assert registry.resolve("support@prod").version == 1
    registry.tag("support-v2", "prod")
    assert registry.resolve("support@prod").version == 2
    assert registry.resolve("support-v2").aliases == ("prod",)
    assert [h["version"] for h in registry.alias_history("support", "prod")] == [1, 2]


def test_rm_refuses_aliased_version_unless_forced(registry):
    publish_files(registry, "support")
    publish_files(registry, "support")
    registry.tag("support-v1", "prod")
    with pytest.raises(RegistryConflict, match="support@prod"):
        registry.remove("support-v1")
    assert registry.resolve("support-v1")
    registry.remove("support-v1", force=True)
    with pytest.raises(UnknownReference, match="no alias 'prod'"):
        registry.resolve("support@prod")
    assert [h["version"] for h in registry.alias_history("support", "prod")] == [1, None]


@pytest.mark.parametrize("name", ["support", "faq-bot", "a.b_c-2", "x", "gpt2"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["Support", "../etc", "a/b", "a\\b", "a..b", "-lead", "trail-", "", "sp ace", "x" * 65, "support-v2", "a@b"])
def test_invalid_names(name):
    with pytest.raises(InvalidName):
        validate_name(name)


@pytest.mark.parametrize(
    "text, name, version, alias",
    [
        ("support-v2", "support", 2, None),
        ("support", "support", None, None),
        ("support@prod", "support", None, "prod"),
        ("my.model_2-v10", "my.model_2", 10, None),
        ("a-v0", "a", 0, None),
        ("support-v2-x", "support-v2-x", None, None),  # -v<digits> only marks a version at the very end
        ("support-v", "support-v", None, None),
        ("support-v01", "support", 1, None),
        (f"big-v{2**63 - 1}", "big", 2**63 - 1, None),
        ("tiny-gpt2@latest-good", "tiny-gpt2", None, "latest-good"),
    ],
)
def test_reference_forms(text, name, version, alias):
    ref = parse_ref(text)
    assert (ref.name, ref.version, ref.alias) == (name, version, alias)
    assert parse_ref(str(ref)) == ref  # str() writes a reference that parses back to the same thing
    if text != "support-v01":
        assert str(ref) == text


@pytest.mark.parametrize(
    "text",
    ["support@Prod", "Support", "support@", "@prod", "support@prod@x", "support@prod-v2", "-v2", "support-v2@prod",
     "../etc-v1", "a/b@c", "", f"big-v{2**63}", "support v2"],
)
def test_invalid_references(text):
    with pytest.raises(InvalidName):
        parse_ref(text)


def test_unknown_references(registry):
    with pytest.raises(UnknownReference, match="no model named 'nope'"):
        registry.resolve("nope")
    publish_files(registry, "support")
    with pytest.raises(UnknownReference, match="support has versions 1"):
        registry.resolve("support-v7")


def test_publish_interrupted_by_exception_leaves_nothing_visible(registry, monkeypatch):
    def fail(path):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module, "fsync_dir", fail)  # fails after the rename, inside the transaction
    with pytest.raises(RuntimeError, match="disk on fire"):
        publish_files(registry, "support")
    monkeypatch.undo()
    assert registry.entries() == []
    assert not (registry.store / "support" / "v1").exists()
    assert list(registry.tmp.iterdir()) == []  # the staging directory was cleaned up
    assert publish_files(registry, "support").ref == "support-v1"


def test_exception_while_writing_stage_publishes_nothing(registry):
    with pytest.raises(KeyboardInterrupt):
        with registry.staging() as stage:
            (stage / "half.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt
    assert registry.entries() == [] and list(registry.tmp.iterdir()) == []


KILL_AFTER_RENAME = """
import os, signal, sys
from ftreg.registry import Registry
from ftreg.registry import store
real_rename = os.rename
def rename_then_die(src, dst):
    real_rename(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)  # after the version directory is in place, before commit
store.os.rename = rename_then_die
registry = Registry(sys.argv[1])
with registry.staging() as stage:
    (stage / "model.json").write_bytes(b"from the killed process")
    registry.publish(stage, name="support", kind="checkpoint")
"""


def test_publish_in_killed_process_leaves_nothing_visible(registry):
    publish_files(registry, "other")
    child = subprocess.run([sys.executable, "-c", KILL_AFTER_RENAME, str(registry.home)], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert (registry.store / "support" / "v1").exists()  # the orphan directory is there ...
    assert [e.ref for e in Registry(registry.home).entries()] == ["other-v1"]  # ... but invisible
    entry = publish_files(registry, "support", {"model.safetensors": safetensors_bytes("new")}, kind="checkpoint")
    assert entry.ref == "support-v1"
    assert (entry.path / "model.safetensors").read_bytes() == safetensors_bytes("new")
    registry.verify_files(entry)


def _publish_in_process(home: str) -> str:
    registry = Registry(home)
    try:
        return publish_files(registry, "race").ref
    finally:
        registry.close()


def test_eight_concurrent_publishers_get_consecutive_versions(registry):
    registry.entries()  # create the database first, as any earlier command would have
    with ProcessPoolExecutor(8, mp_context=get_context("spawn")) as pool:
        refs = list(pool.map(_publish_in_process, [str(registry.home)] * 8))
    assert sorted(refs, key=lambda r: int(r.rsplit("v", 1)[1])) == [f"race-v{n}" for n in range(1, 9)]
    assert [e.version for e in registry.entries("race")] == list(range(1, 9))
    for entry in registry.entries("race"):
        registry.verify_files(entry)


def test_concurrent_publishers_on_a_fresh_registry(tmp_path):
    home = tmp_path / "fresh"
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        refs = list(pool.map(_publish_in_process, [str(home)] * 4))
    assert sorted(refs) == [f"race-v{n}" for n in range(1, 5)]


def test_migration_from_an_empty_database(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.db").touch()  # an empty file is an empty SQLite database
    registry = Registry(home)
    assert registry.entries() == []
    applied = [name for (name,) in registry.db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert applied == sorted(fn.__name__ for fn in MIGRATIONS)
    assert registry.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    registry.close()
    # Reopening applies nothing twice.
    db = sqlite3.connect(home / "registry.db")
    count = db.execute("SELECT count(*) FROM _migrations").fetchone()[0]
    Registry(home).entries()
    assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == count


def test_migration_names_are_unique_and_ordered():
    names = [fn.__name__ for fn in MIGRATIONS]
    assert names == sorted(set(names))


def test_stale_staging_directories_are_swept(registry):
    publish_files(registry, "support")
    stale = registry.tmp / "stage-deadbeef"
    stale.mkdir(parents=True)
    (stale / "partial.safetensors").write_bytes(b"x")
    old = time.time() - STALE_AFTER_S - 10
    os.utime(stale, (old, old))
    with registry.staging() as live:
        os.utime(live, (old, old))  # old but still in use: its lock is held
        with registry.staging():
            assert live.exists()
        assert not stale.exists()


def test_absurd_version_numbers_are_invalid_not_a_crash(registry):
    with pytest.raises(InvalidName, match="version numbers go up to"):
        registry.resolve("x-v99999999999999999999")
