"""Behaviour that had no test: generation options, CLI parse errors, problem cut-off, recorded plugin
versions, merged export, private push, pulling a plain Hub repo, and a base from a Hub id.

Nothing here trains for real: the ``fake-adapter``/``fake-checkpoint`` strategies of ftreg.testing write
a valid artifact instantly (the fake adapter is a zero LoRA, so it computes exactly what its base does).
"""

import json
import re
import shutil

import pytest

import ftreg
from conftest import write_json
from ftreg.bases.resolve import fingerprint
from ftreg.contract.formats import MAX_PROBLEMS
from ftreg.files import sha256_file
from ftreg.inference.compose import GenerationOptions

PAIRS = [
    {"instruction": "How do I return an item?", "response": "Start a return from the Orders page within 30 days."},
    {"instruction": "Where is my package?", "response": "Use the tracking link in your shipping email."},
    {"instruction": "How do I reset my password?", "response": "Click Forgot password on the sign-in page."},
    {"instruction": "Is shipping free?", "response": "Standard shipping is free over 50 dollars."},
]
INSTRUCTION_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n"
# The files a plain Hugging Face GPT-2 directory needs (what a user would upload to the Hub).
HF_FILES = ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")
GREEDY = ["--greedy", "--max-new-tokens", "10"]


@pytest.fixture
def dataset(tmp_path):
    return write_json(tmp_path / "support.json", PAIRS)


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def _one_line_error(result, pattern):
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and re.search(pattern, lines[0]), lines[0]


def _completions(cli_run, *args):
    """``ftreg generate ... --json``'s completions, and the model it names."""
    data = json.loads(_ok(cli_run("generate", *args, "--json")).stdout)
    return [item["completion"] for item in data], {item["model"] for item in data}


def _fake_adapter(cli_run, dataset, name="fake"):
    """Publish a zero-LoRA adapter on tiny-gpt2-v1 with the instruction template; returns its reference."""
    result = _ok(cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", name, "--eval-split", "0"))
    return result.stdout.strip().splitlines()[-1]


def _hf_greedy(model_dir, text, max_new_tokens=10):
    """What plain transformers generates greedily for ``text`` (the reference for ftreg's output)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, repetition_penalty=GenerationOptions.repetition_penalty, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


# -- a. --raw ------------------------------------------------------------------------------------


def test_raw_sends_the_prompt_without_the_template(cli_run, embedded_base, fake_strategies, dataset):
    ref = _fake_adapter(cli_run, dataset)
    prompts = ["How do I return an item?", "Is shipping free?"]
    templated, models = _completions(cli_run, "--adapter", ref, *GREEDY, *prompts)
    raw, _ = _completions(cli_run, "--adapter", ref, "--raw", *GREEDY, *prompts)
    assert models == {f"{ref} on tiny-gpt2-v1"}
    # The zero LoRA changes nothing, so plain transformers on the base is the reference for both.
    assert templated == [_hf_greedy(embedded_base.path, INSTRUCTION_TEMPLATE.replace("{prompt}", p)) for p in prompts]
    assert raw == [_hf_greedy(embedded_base.path, p) for p in prompts]
    assert raw != templated  # otherwise this test could not tell the two apart
    # --raw beats --format too, and the template can be written out by hand instead.
    assert _completions(cli_run, "--base", "tiny-gpt2", "--format", "instruction", "--raw", *GREEDY, *prompts)[0] == raw
    by_hand = [INSTRUCTION_TEMPLATE.replace("{prompt}", p) for p in prompts]
    assert _completions(cli_run, "--base", "tiny-gpt2", "--raw", *GREEDY, *by_hand)[0] == templated


# -- b. sampling-option ranges -------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value, field",
    [
        ("--temperature", "0", "temperature"),
        ("--temperature", "-1", "temperature"),
        ("--top-p", "0", "top_p"),
        ("--top-p", "1.5", "top_p"),
        ("--max-new-tokens", "0", "max_new_tokens"),
        ("--top-k", "-1", "top_k"),
        ("--repetition-penalty", "0", "repetition_penalty"),
    ],
)
def test_sampling_options_out_of_range_fail_before_loading(cli_run, monkeypatch, flag, value, field):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(ftreg, "load", no_loading)
    # An unknown adapter as well: the options must be refused before the reference is even looked at.
    result = cli_run("generate", "--adapter", "nope", flag, value, "Hi")
    # The library says top_p; the CLI may translate that into the flag the user typed (--top-p).
    _one_line_error(result, rf"(?<![\w-])(--)?{field.replace('_', '[-_]')}\b")
    assert value in result.stderr or str(float(value)) in result.stderr  # and the value it got
    with pytest.raises(ftreg.ConfigError, match=field):
        GenerationOptions(**{field: type(getattr(GenerationOptions, field))(value)})


def test_sampling_option_edges_that_are_allowed(cli_run, embedded_base):
    from transformers import AutoTokenizer

    args = ["--top-p", "1", "--top-k", "0", "--temperature", "0.001", "--repetition-penalty", "1", "--max-new-tokens", "1", "--seed", "1"]
    completions, _ = _completions(cli_run, "--base", "tiny-gpt2", *args, "Hello")
    tokenizer = AutoTokenizer.from_pretrained(embedded_base.path)
    assert len(tokenizer(completions[0], add_special_tokens=False)["input_ids"]) <= 1  # --max-new-tokens 1 is one token at most


# -- c. --column parse errors --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "data check"])
@pytest.mark.parametrize("value", ["nokey", "=answer", "response="])
def test_column_without_field_and_name_is_refused(cli_run, registry, dataset, command, value):
    args = ["train", "--strategy", "lora8bit", "--name", "support", "--dataset", dataset] if command == "train" else ["data", "check", dataset]
    result = cli_run(*args, "--column", value)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert re.search(rf"--column.*expected FIELD=NAME, got '{re.escape(value)}'", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert registry.entries() == [] and not (registry.home / "runs").exists()


def test_column_renames_a_key(cli_run, embedded_base, tmp_path):
    path = write_json(tmp_path / "renamed.json", [{"instruction": p["instruction"], "answer": p["response"]} for p in PAIRS])
    report = json.loads(_ok(cli_run("data", "check", path, "--format", "instruction", "--column", "response=answer", "--json")).stdout)
    assert report["examples"] == len(PAIRS) and report["format"] == "instruction"
    assert "[[Start a return from the Orders page within 30 days." in report["example"]["rendered"]


# -- d. the problem-count cut-off ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [MAX_PROBLEMS, MAX_PROBLEMS + 1, MAX_PROBLEMS + 7])
def test_problem_report_stops_after_max_problems(cli_run, registry, tmp_path, bad):
    assert MAX_PROBLEMS == 20
    lines = [json.dumps(PAIRS[0])] + [json.dumps({"instruction": f"question {i}"}) for i in range(bad)]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for args in (["data", "check", path, "--format", "instruction"], ["train", "--strategy", "lora8bit", "--name", "x", "--dataset", path]):
        result = cli_run(*args)
        assert result.exit_code == 2, result.output
        reported = result.stderr.strip().splitlines()
        shown = min(bad, MAX_PROBLEMS)
        expected = [f"{path}:{line}: missing key 'response'" for line in range(2, 2 + shown)]
        expected[0] = "Error: " + expected[0]
        if bad > MAX_PROBLEMS:
            expected.append(f"... and {bad - MAX_PROBLEMS} more problems")
        assert reported == expected
    assert registry.entries() == []


# -- e. plugin_versions --------------------------------------------------------------------------


def test_training_records_the_plugins_that_made_the_version(cli_run, embedded_base, fake_strategies, registry, dataset):
    ref = _fake_adapter(cli_run, dataset)
    entry = registry.resolve(ref)
    assert entry.manifest["plugin_versions"] == {
        "strategy:fake-adapter": {"plugin": "ftreg-testing-fake-strategies", "version": None},
        "format:instruction": {"plugin": "ftreg.default_plugins.formats.instruction", "version": ftreg.__version__},
    }
    assert entry.manifest["ftreg_version"] == ftreg.__version__
    shown = json.loads(_ok(cli_run("show", ref, "--json")).stdout)
    assert shown["plugin_versions"] == entry.manifest["plugin_versions"]

    text = dataset.parent / "lines.txt"
    text.write_text("\n".join(p["response"] for p in PAIRS) + "\n")
    ref = _ok(cli_run("train", "--strategy", "fake-checkpoint", "--dataset", text, "--format", "text", "--name", "plain", "--eval-split", "0")).stdout.strip()
    assert registry.resolve(ref).manifest["plugin_versions"] == {
        "strategy:fake-checkpoint": {"plugin": "ftreg-testing-fake-strategies", "version": None},
        "format:text": {"plugin": "ftreg.default_plugins.formats.text", "version": ftreg.__version__},
    }


# -- f. export --merge and push --private through the CLI ----------------------------------------


def test_merged_export_of_an_adapter_through_the_cli(cli_run, embedded_base, fake_strategies, dataset, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = _fake_adapter(cli_run, dataset)
    out = tmp_path / "merged"
    result = _ok(cli_run("export", ref, out, "--merge"))
    assert result.stdout.strip() == str(out)
    assert "merged" in result.stderr and f"{ref} on tiny-gpt2-v1" in result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not names & {"adapter_config.json", "adapter_model.safetensors", "manifest.json"}
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]

    merged = AutoModelForCausalLM.from_pretrained(out).eval()  # plain transformers, no peft, no ftreg
    base = AutoModelForCausalLM.from_pretrained(embedded_base.path).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    input_ids = AutoTokenizer.from_pretrained(out)("How do I return an item?", return_tensors="pt")["input_ids"]
    assert input_ids.equal(AutoTokenizer.from_pretrained(embedded_base.path)("How do I return an item?", return_tensors="pt")["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=input_ids).logits, base(input_ids=input_ids).logits, atol=1e-5, rtol=0)

    again = cli_run("export", ref, out, "--merge")
    assert again.exit_code == 2 and "not an empty directory" in again.stderr


def test_push_private_creates_a_private_repo(hub, cli_run, embedded_base, registry):
    from huggingface_hub import HfApi

    # A checkpoint (the embedded base): it loads anywhere as it is, so it needs no base pushed with it.
    private = _ok(cli_run("push", "tiny-gpt2-v1", "--repo", "alice/secret", "--private"))
    public = _ok(cli_run("push", "tiny-gpt2-v1", "--repo", "alice/open"))
    for result, repo in ((private, "alice/secret"), (public, "alice/open")):
        assert result.stdout.strip().startswith(f"{hub.url}/{repo}")
        assert hub.refs(repo)["tags"]["v1"] == hub.refs(repo)["branches"]["main"]
        remote = hub.repo_files(repo, "v1")
        assert set(embedded_base.manifest["files"]) | {"manifest.json"} <= set(remote)
    assert hub.store.repos[("model", "alice/secret")]["private"] is True
    assert hub.store.repos[("model", "alice/open")]["private"] is False
    assert HfApi().model_info("alice/secret").private is True
    assert HfApi().model_info("alice/open").private is False
    # A private repo is invisible without the token.
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("alice/secret")


# -- g. pulling a repo that ftreg did not push ---------------------------------------------------


def _upload_plain_model(embedded_base, tmp_path, repo_id):
    """Upload the embedded base's Hugging Face files (no ftreg manifest) as ``repo_id``; returns the commit."""
    from huggingface_hub import HfApi

    folder = tmp_path / repo_id.replace("/", "--")
    folder.mkdir()
    for name in HF_FILES:
        if (embedded_base.path / name).is_file():
            shutil.copyfile(embedded_base.path / name, folder / name)
    api = HfApi()
    api.create_repo(repo_id)
    return api.upload_folder(repo_id=repo_id, folder_path=folder).oid, folder


def test_pull_of_a_plain_hub_model_registers_a_checkpoint(hub, cli_run, embedded_base, registry, tmp_path):
    commit, folder = _upload_plain_model(embedded_base, tmp_path, "bob/plain-gpt2")
    assert "manifest.json" not in hub.repo_files("bob/plain-gpt2")
    result = _ok(cli_run("pull", "bob/plain-gpt2", "--name", "plain"))
    assert result.stdout.strip() == "plain-v1"

    entry = registry.resolve("plain-v1")
    assert entry.kind == "checkpoint"
    assert entry.manifest["hub"] == {"repo_id": "bob/plain-gpt2", "revision": "main", "commit": commit}
    uploaded = {p.name for p in folder.iterdir()}
    assert uploaded <= set(entry.manifest["files"])
    for name in uploaded:
        assert entry.manifest["files"][name]["sha256"] == sha256_file(folder / name)
    shown = json.loads(_ok(cli_run("show", "plain", "--json")).stdout)
    assert shown["lineage"][0] == f"plain-v1 [checkpoint] (pulled from bob/plain-gpt2@{commit[:12]})"
    verified = _ok(cli_run("verify", "plain"))
    assert re.fullmatch(r"1 versions? checked, 0 problems", verified.stdout.strip()) and verified.stderr == ""
    # It is a usable base: the same weights, so the same greedy completion as the original.
    prompt = ["Where is my package?"]
    assert _completions(cli_run, "--base", "plain", *GREEDY, *prompt)[0] == _completions(cli_run, "--base", "tiny-gpt2", *GREEDY, *prompt)[0]


# -- h. a base given as a Hub id -----------------------------------------------------------------


def test_a_hub_id_resolves_as_a_base_pinned_to_its_commit(hub, cli_run, embedded_base, fake_strategies, registry, dataset, tmp_path):
    commit, _ = _upload_plain_model(embedded_base, tmp_path, "carol/tiny")
    report = json.loads(_ok(cli_run("data", "check", "builtin:support", "--base", "carol/tiny", "--json")).stdout)
    assert report["tokenizer"] == f"carol/tiny@{commit}"
    from huggingface_hub import HfApi

    HfApi().create_tag("carol/tiny", tag="v1", revision=commit)
    tagged = json.loads(_ok(cli_run("data", "check", "builtin:support", "--base", "carol/tiny@v1", "--json")).stdout)
    assert tagged["tokenizer"] == f"carol/tiny@{commit}"  # a tag is recorded as the commit it names
    reference = json.loads(_ok(cli_run("data", "check", "builtin:support", "--json")).stdout)
    assert reference["tokenizer"] == "tiny-gpt2-v1" and report["tokens"] == reference["tokens"]

    completions, models = _completions(cli_run, "--base", "carol/tiny", *GREEDY, "Hello")
    assert models == {f"carol/tiny@{commit}"}
    assert completions == _completions(cli_run, "--base", "tiny-gpt2", *GREEDY, "Hello")[0]

    ref = _ok(cli_run("train", "--strategy", "fake-adapter", "--dataset", dataset, "--name", "onhub", "--base", "carol/tiny", "--eval-split", "0")).stdout.strip()
    entry = registry.resolve(ref)
    assert entry.base == f"carol/tiny@{commit}"
    assert entry.manifest["base_source"] == {"type": "hub", "repo_id": "carol/tiny", "revision": commit}
    assert entry.manifest["base_fingerprint"] == fingerprint(embedded_base.path)  # the same files, so the same base
    # A later commit on the repo does not move an adapter recorded at the old one.
    HfApi().upload_file(path_or_fileobj=b"# changed\n", path_in_repo="README.md", repo_id="carol/tiny")
    assert hub.refs("carol/tiny")["branches"]["main"] != commit
    assert _completions(cli_run, "--adapter", ref, *GREEDY, "Hello")[1] == {f"{ref} on carol/tiny@{commit}"}


def test_greedy_ignores_sampling_settings(cli_run, embedded_base):
    greedy, _ = _completions(cli_run, "--base", "tiny-gpt2", "--greedy", "--temperature", "0", "--top-p", "0", "--max-new-tokens", "4", "Hello")
    again, _ = _completions(cli_run, "--base", "tiny-gpt2", "--greedy", "--max-new-tokens", "4", "Hello")
    assert greedy == again


def test_an_adapter_pulled_without_a_manifest_generates_on_the_base_the_user_names(hub, cli_run, embedded_base, registry, tmp_path):
    from huggingface_hub import HfApi

    from ftreg.testing import write_zero_lora

    folder = tmp_path / "plain-adapter"
    folder.mkdir()
    write_zero_lora(embedded_base.path, folder)
    HfApi().create_repo("alice/plain-adapter")
    HfApi().upload_folder(repo_id="alice/plain-adapter", folder_path=folder)
    assert _ok(cli_run("pull", "alice/plain-adapter", "--name", "plain")).stdout == "plain-v1\n"
    _one_line_error(cli_run("generate", "--adapter", "plain", "Hi"), r"plain-v1 records no base .*; pass the --base it was trained on")
    with_base, _ = _completions(cli_run, "--adapter", "plain", "--base", "tiny-gpt2-v1", "--greedy", "--max-new-tokens", "5", "--raw", "Hello")
    bare, _ = _completions(cli_run, "--base", "tiny-gpt2-v1", "--greedy", "--max-new-tokens", "5", "--raw", "Hello")
    assert with_base == bare  # a zero LoRA changes nothing


def test_show_lists_plugin_versions_readably(cli_run, embedded_base, fake_strategies, dataset):
    ref = _fake_adapter(cli_run, dataset)
    versions = next(line for line in _ok(cli_run("show", ref)).stdout.splitlines() if line.startswith("versions:"))
    assert "strategy:fake-adapter=ftreg-testing-fake-strategies" in versions and "format:instruction=ftreg.default_plugins.formats.instruction 0.2.0" in versions
    assert "{" not in versions
