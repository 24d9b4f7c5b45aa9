"""The Python API keeps the guarantees the CLI has: checks live in the library, not in the command line."""

import pytest
from huggingface_hub import HfApi

import ftreg
from conftest import write_json


@pytest.fixture
def fake_adapter(fake_strategies, embedded_base, registry, tmp_path):
    data = write_json(tmp_path / "d.json", [{"instruction": f"q{i}", "response": f"a{i}"} for i in range(4)])
    spec = ftreg.settings({"strategy": "fake-adapter", "dataset": str(data), "name": "fa"})
    return ftreg.train(spec, registry=registry, show_progress=False)


def test_push_from_python_refuses_a_corrupted_version(hub, fake_adapter, registry):
    weights = fake_adapter.path / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ftreg.ArtifactError, match="adapter_model.safetensors does not match its recorded sha256"):
        ftreg.push(fake_adapter.ref, "alice/fa", registry=registry)
    assert not HfApi().repo_exists("alice/fa")  # nothing was created or uploaded


def test_resume_from_python_refuses_a_finished_run(fake_adapter, registry):
    run = ftreg.runs(registry=registry)[-1]
    assert run.status == "finished" and run.record["published"] == fake_adapter.ref
    with pytest.raises(ftreg.ConfigError, match=f"run {run.id} already published {fake_adapter.ref}; resuming would publish it twice"):
        ftreg.resume(run.id, registry=registry)


def test_library_messages_name_settings_not_flags(registry):
    with pytest.raises(ftreg.FtregError, match=r"pass an `adapter`, a `base`, or both"):
        ftreg.load(registry=registry)


def test_settings_and_train_take_an_entry_or_a_reference(fake_adapter, registry):
    by_entry = ftreg.settings(parent=fake_adapter, registry=registry)
    by_ref = ftreg.settings(parent=fake_adapter.ref, registry=registry)
    assert by_entry == by_ref and by_entry.options == {"loss": 1.0, "steps": 3, "poison": False}
    again = ftreg.train(by_entry, registry=registry, parent=fake_adapter, show_progress=False)
    assert again.ref == "fa-v2" and again.manifest["parent"] == "fa-v1"
