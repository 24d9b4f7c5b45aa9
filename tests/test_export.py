import pytest

from ftreg.inference.compose import compose
from ftreg.inference.export import export
from ftreg.errors import ArtifactError, FtregError, UnknownReference


@pytest.fixture
def adapter(support_adapter, registry):
    return registry.resolve("support")


def _logits(model, input_ids):
    import torch

    with torch.no_grad():
        return model.eval()(input_ids=input_ids).logits


def _composed_logits(registry):
    composed = compose(registry, adapter="support")
    input_ids = composed.tokenizer("Is shipping free? Start a return.", return_tensors="pt")["input_ids"]
    return input_ids, _logits(composed.model, input_ids)


@pytest.mark.slow
# peft calls a transformers API that transformers has deprecated (see compose.py).
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_adapter_export_loads_with_plain_peft(adapter, embedded_base, registry, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = export(registry, "support", tmp_path / "out")
    assert out == tmp_path / "out"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in out.iterdir()}
    assert not (out / "manifest.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging directory left behind

    input_ids, expected = _composed_logits(registry)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(embedded_base.path), out)
    torch.testing.assert_close(_logits(model, input_ids), expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_merged_export_is_a_standalone_model(adapter, embedded_base, registry, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    notes = []
    out = export(registry, "support", tmp_path / "merged", merge=True, notify=notes.append)
    assert len(notes) == 1 and "full precision" in notes[0] and "\n" not in notes[0]
    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names and "adapter_config.json" not in names
    assert not [n for n in names if n.endswith((".bin", ".pt"))]

    merged = AutoModelForCausalLM.from_pretrained(out)
    assert merged.dtype == torch.float32
    tokenizer = AutoTokenizer.from_pretrained(out)
    input_ids, expected = _composed_logits(registry)
    assert tokenizer("Is shipping free? Start a return.", return_tensors="pt")["input_ids"].equal(input_ids)
    merged_logits = _logits(merged, input_ids)
    torch.testing.assert_close(merged_logits, expected, atol=1e-4, rtol=0)
    bare = _logits(AutoModelForCausalLM.from_pretrained(embedded_base.path), input_ids)
    assert (merged_logits - bare).abs().max() > 1e-2  # the adapter really is in the merged weights


def test_checkpoint_exports_as_is(embedded_base, registry, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    notes = []
    out = export(registry, "tiny-gpt2", tmp_path / "ckpt", merge=True, notify=notes.append)
    assert len(notes) == 1 and "needs no merge" in notes[0]
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "manifest.json" not in names
    model = AutoModelForCausalLM.from_pretrained(out)
    original = AutoModelForCausalLM.from_pretrained(embedded_base.path)
    input_ids = AutoTokenizer.from_pretrained(out)("Hello there", return_tensors="pt")["input_ids"]
    torch.testing.assert_close(_logits(model, input_ids), _logits(original, input_ids), atol=0, rtol=0)


def test_non_empty_out_dir_is_refused_and_untouched(embedded_base, registry, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FtregError, match=r"out already exists and is not an empty directory"):
        export(registry, "tiny-gpt2", out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"

    (out / "keep.txt").unlink()
    export(registry, "tiny-gpt2", out)  # an empty directory is fine
    assert (out / "model.safetensors").is_file()


def test_unknown_reference(registry, tmp_path):
    with pytest.raises(UnknownReference):
        export(registry, "nope", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_corrupted_adapter_writes_nothing(adapter, registry, tmp_path):
    weights = adapter.path / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    before = sorted(tmp_path.iterdir())
    for merge in (False, True):
        with pytest.raises(ArtifactError, match=r"adapter_model.safetensors does not match"):
            export(registry, "support", tmp_path / "out", merge=merge)
        assert sorted(tmp_path.iterdir()) == before  # neither out nor a staging directory


def test_export_command(cli_run, embedded_base, tmp_path):
    out = tmp_path / "exported-base"
    result = cli_run("export", "tiny-gpt2", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and (out / "model.safetensors").is_file()
    again = cli_run("export", "tiny-gpt2", out)
    assert again.exit_code == 2 and "not an empty directory" in again.stderr
