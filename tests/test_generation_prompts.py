"""Generation renders prompts the way training did: system prompts, Alpaca inputs, dialogues, batches.

Nothing here trains for real: ``fake-adapter`` (ftreg.testing) publishes a zero LoRA, which computes
exactly what its base does, so a version's completion equals the bare base's on the raw rendered prompt.
"""

import json
import subprocess
import sys

import pytest

import ftreg
from conftest import HEAVY_MODULES, publish_files, write_json
from ftreg import plugins
from ftreg.datasets.loading import load_dataset
from ftreg.default_plugins.formats.alpaca import WITH_INPUT

SYSTEM = "You are Northwind's support assistant."
DIALOGUES = [
    {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "It ships today."}]},
    {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Is shipping free?"}, {"role": "assistant", "content": "Over 50 dollars."},
                  {"role": "user", "content": "And returns?"}, {"role": "assistant", "content": "Free within 30 days."}]},
    {"messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Bonjour"}]},
    {"messages": [{"role": "user", "content": "Can I cancel?"}, {"role": "assistant", "content": "Within one hour."}]},
]
ALPACA = [
    {"instruction": "Summarize the text.", "input": "The order shipped on Monday and arrives Friday.", "output": "Arrives Friday."},
    {"instruction": "Say hello.", "input": "", "output": "Hello!"},
]
GREEDY = ["--greedy", "--max-new-tokens", "6"]


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def _one_line_error(result, message):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert result.stdout == ""


def _read(tmp_path, format_name, records):
    path = tmp_path / f"{format_name}.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return load_dataset(str(path), format_name).examples


# -- the rendered prompt is training's untrained prefix, byte for byte --------------------------------


def test_a_chat_prompt_with_a_system_message_renders_as_training_did(tmp_path):
    examples = _read(tmp_path, "chat", DIALOGUES)
    chat = plugins.get_dataset_format("chat")
    assert chat.system_prompt(examples) == SYSTEM  # the most common first system message
    prompter = ftreg.Prompter(chat.generation_template(SYSTEM), "chat", SYSTEM)
    untrained = examples[0].segments[0]
    assert not untrained.trains
    # by default (the recorded system prompt, through the recorded template), and with it named
    assert prompter.segments("Where is my order?") == (untrained,)
    assert prompter.segments("Where is my order?", system=SYSTEM) == (untrained,)
    assert prompter.render("Where is my order?").encode() == untrained.text.encode()
    # another system message replaces it, as another dialogue of the data renders it
    assert prompter.segments("Hello", system="Answer in French.") == (examples[2].segments[0],)
    assert prompter.segments("Can I cancel?", system="") == (examples[3].segments[0],)  # "": none


def test_a_dialogue_renders_every_earlier_turn_as_training_did(tmp_path):
    examples = _read(tmp_path, "chat", DIALOGUES)
    prompter = ftreg.Prompter("<|user|>\n{prompt}\n<|assistant|>\n", "chat", SYSTEM)
    turns = DIALOGUES[1]["messages"][1:-1]  # without the system message (the recorded one is used) and the last reply
    assert prompter.segments(messages=turns) == examples[1].segments[:-1]
    assert prompter.segments(messages=DIALOGUES[2]["messages"][:-1]) == examples[2].segments[:-1]  # its own system message wins
    assert prompter.render(messages=turns).endswith("Over 50 dollars.<|endoftext|>\n<|user|>\nAnd returns?\n<|assistant|>\n")


def test_an_alpaca_input_renders_as_training_did(tmp_path):
    examples = _read(tmp_path, "alpaca", ALPACA)
    prompter = ftreg.Prompter(plugins.get_dataset_format("alpaca").prompt_template, "alpaca")
    assert prompter.segments("Summarize the text.", input="The order shipped on Monday and arrives Friday.") == (examples[0].segments[0],)
    assert examples[0].segments[0].text.startswith(WITH_INPUT.split("{instruction}")[0])
    assert prompter.segments("Say hello.") == prompter.segments("Say hello.", input="") == (examples[1].segments[0],)


# -- what a version records, and generation from it -----------------------------------------------------


@pytest.fixture
def chat_version(fake_strategies, embedded_base, cli_run, tmp_path):
    data = tmp_path / "dialogues.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in DIALOGUES), encoding="utf-8")
    return _ok(cli_run("train", "--strategy", "fake-adapter", "--dataset", data, "--name", "chatty", "--eval-split", "0")).stdout.strip().splitlines()[-1]


def _completion(cli_run, *args):
    return _ok(cli_run("generate", *GREEDY, *args)).stdout.strip()


def test_a_chat_version_generates_with_its_recorded_system_prompt_and_system_replaces_it(chat_version, cli_run, registry):
    entry = registry.resolve(chat_version)
    assert entry.manifest["system_prompt"] == SYSTEM
    assert entry.manifest["prompt_template"] == f"<|system|>\n{SYSTEM}\n<|user|>\n{{prompt}}\n<|assistant|>\n"
    assert json.loads(_ok(cli_run("show", chat_version, "--json")).stdout)["system_prompt"] == SYSTEM

    recorded = f"<|system|>\n{SYSTEM}\n<|user|>\nWhere is my order?\n<|assistant|>\n"
    assert ftreg.prompter(chat_version).render("Where is my order?") == recorded
    assert _completion(cli_run, "--adapter", chat_version, "Where is my order?") == _completion(cli_run, "--base", "tiny-gpt2", "--raw", recorded)

    other = "<|system|>\nAnswer in French.\n<|user|>\nWhere is my order?\n<|assistant|>\n"
    assert ftreg.prompter(chat_version).render("Where is my order?", system="Answer in French.") == other
    assert _completion(cli_run, "--adapter", chat_version, "--system", "Answer in French.", "Where is my order?") == _completion(cli_run, "--base", "tiny-gpt2", "--raw", other)


def test_the_system_prompt_travels_with_push_and_pull(hub, chat_version, cli_run, registry):
    _ok(cli_run("push", chat_version, "--repo", "alice/chatty", "--base-repo", "alice/tiny"))
    pulled = _ok(cli_run("pull", "alice/chatty", "--name", "chatcopy")).stdout.strip().splitlines()[-1]
    assert registry.resolve(pulled).manifest["system_prompt"] == SYSTEM
    assert ftreg.prompter(pulled).render("Hi", system="Be brief.") == ftreg.prompter(chat_version).render("Hi", system="Be brief.")
    assert ftreg.prompter(pulled).render("Hi") == ftreg.prompter(chat_version).render("Hi")


def test_a_dialogue_from_a_messages_file_generates_as_the_raw_rendered_dialogue(chat_version, cli_run, tmp_path):
    dialogue = write_json(tmp_path / "dialogue.json", DIALOGUES[1]["messages"][1:-1])
    rendered = ftreg.prompter(chat_version).render(messages=DIALOGUES[1]["messages"][1:-1])
    assert rendered.startswith(f"<|system|>\n{SYSTEM}\n")
    assert _completion(cli_run, "--adapter", chat_version, "--messages", dialogue) == _completion(cli_run, "--base", "tiny-gpt2", "--raw", rendered)
    model = ftreg.load(chat_version)  # the Python API does the same
    assert model.generate(messages=DIALOGUES[1]["messages"][1:-1], options=ftreg.GenerationOptions(greedy=True, max_new_tokens=6)) == _completion(
        cli_run, "--adapter", chat_version, "--messages", dialogue
    )


def test_an_alpaca_version_fills_the_input_section(fake_strategies, embedded_base, cli_run, tmp_path):
    data = write_json(tmp_path / "alpaca.json", ALPACA)
    ref = _ok(cli_run("train", "--strategy", "fake-adapter", "--dataset", data, "--name", "alp", "--eval-split", "0")).stdout.strip().splitlines()[-1]
    rendered = WITH_INPUT.replace("{instruction}", "Summarize the text.").replace("{input}", "It arrives Friday.")
    assert ftreg.prompter(ref).render("Summarize the text.", input="It arrives Friday.") == rendered
    assert _completion(cli_run, "--adapter", ref, "--input", "It arrives Friday.", "Summarize the text.") == _completion(cli_run, "--base", "tiny-gpt2", "--raw", rendered)


# -- several prompts at once ----------------------------------------------------------------------------


def test_a_prompts_file_generates_each_prompt_under_a_separator_or_as_json_lines(embedded_base, cli_run, tmp_path):
    lines = tmp_path / "prompts.txt"
    lines.write_text("Hello\n\nWhere is it?\n", encoding="utf-8")
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text('{"prompt": "Hello"}\n{"prompt": "Where is it?"}\n', encoding="utf-8")
    singles = [_completion(cli_run, "--base", "tiny-gpt2", text) for text in ("Hello", "Where is it?")]

    text = _completion(cli_run, "--base", "tiny-gpt2", "--prompts", lines)
    assert text == f"==> Hello <==\n{singles[0]}\n\n==> Where is it? <==\n{singles[1]}"
    assert _completion(cli_run, "--base", "tiny-gpt2", "--prompts", jsonl) == text
    assert _completion(cli_run, "--base", "tiny-gpt2", "Hello", "Where is it?") == text  # PROMPT arguments alike

    objects = [json.loads(line) for line in _completion(cli_run, "--base", "tiny-gpt2", "--prompts", jsonl, "--jsonl").splitlines()]
    assert objects == [{"prompt": p, "completion": c, "model": "tiny-gpt2-v1"} for p, c in zip(("Hello", "Where is it?"), singles)]
    assert json.loads(_completion(cli_run, "--base", "tiny-gpt2", "--prompts", jsonl, "--json")) == objects  # --json: still one array


# -- misuse: one line, exit code 2, before the model loads ----------------------------------------------


@pytest.fixture
def recorded_versions(registry):
    """Versions whose records say how they were trained (their weights are never loaded: every misuse stops first)."""
    chat_template = f"<|system|>\n{SYSTEM}\n<|user|>\n{{prompt}}\n<|assistant|>\n"
    for name, format_name, template, system in (
        ("chatty", "chat", chat_template, SYSTEM),
        ("support", "instruction", "### Instruction:\n{prompt}\n\n### Response:\n", None),
        ("alp", "alpaca", plugins.get_dataset_format("alpaca").prompt_template, None),
    ):
        publish_files(registry, name, base="tiny-gpt2-v1", base_fingerprint="sha256:x", dataset={"format": format_name}, config={"format": format_name},
                      prompt_template=template, system_prompt=system)


def _messages(tmp_path, text):
    path = tmp_path / "dialogue.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


MISUSE = {
    "system-on-instruction": (["--adapter", "support", "--system", "Be brief.", "Hi"], "support-v1 renders prompts as format 'instruction', which has no system prompt: --system is for versions trained on chat or sharegpt data (or pass --format chat)"),
    "input-on-chat": (["--adapter", "chatty", "--input", "text", "Hi"], "chatty-v1 renders prompts as format 'chat', which has no input section: --input is for versions trained on alpaca data"),
    "messages-on-alpaca": (["--adapter", "alp", "--messages", "{ok}"], "alp-v1 renders prompts as format 'alpaca', which has no dialogue of messages: --messages is for versions trained on chat or sharegpt data"),
    "system-on-a-bare-base": (["--base", "tiny-gpt2", "--system", "Be brief.", "Hi"], "tiny-gpt2 has no dataset format to render a system prompt with"),
    "raw-with-system": (["--adapter", "chatty", "--raw", "--system", "Be brief.", "Hi"], "--raw sends the prompt as it is, without a template; it takes no --system"),
    "messages-ending-with-the-assistant": (["--adapter", "chatty", "--messages", '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]'],
                                           "dialogue.json: the last message must be from the user (it is the one to reply to), not 'assistant'"),
    "messages-bad-role": (["--adapter", "chatty", "--messages", '[{"role": "bot", "content": "Hi"}, {"role": "user", "content": "Yo"}]'],
                          "dialogue.json: message 1: role must be one of system, user, assistant, got 'bot'"),
    "messages-not-json": (["--adapter", "chatty", "--messages", '[{"role": "user",'], "dialogue.json:1:18: invalid JSON: Expecting property name"),
    "messages-not-a-list": (["--adapter", "chatty", "--messages", '{"role": "user", "content": "Hi"}'], 'dialogue.json: expected a JSON list of {"role", "content"} messages'),
    "messages-and-system-message-and-system": (["--adapter", "chatty", "--system", "S", "--messages", '[{"role": "system", "content": "T"}, {"role": "user", "content": "Hi"}]'],
                                               "dialogue.json: the messages open with a system message of their own; drop it or --system"),
    "messages-and-prompt": (["--adapter", "chatty", "--messages", "{ok}", "Hi"], "--messages is one whole dialogue; pass it without PROMPT or --prompts"),
    "no-prompt": (["--adapter", "chatty"], "nothing to generate: pass a PROMPT, --prompts FILE or --messages FILE"),
    "json-and-jsonl": (["--adapter", "chatty", "--json", "--jsonl", "Hi"], "--json and --jsonl are two shapes of one output"),
    "missing-prompts-file": (["--adapter", "chatty", "--prompts", "nope.txt"], "nope.txt: no such file (--prompts)"),
}


@pytest.mark.parametrize("case", sorted(MISUSE))
def test_misuse_is_one_line_exit_2_and_stops_before_the_model_loads(case, recorded_versions, cli_run, tmp_path, monkeypatch):
    args, message = MISUSE[case]
    monkeypatch.chdir(tmp_path)
    ok = _messages(tmp_path, '[{"role": "user", "content": "Hi"}]')
    args = [_messages(tmp_path, arg) if (arg.startswith(("[", "{")) and arg != "{ok}") else ok if arg == "{ok}" else arg for arg in args]
    _one_line_error(cli_run("generate", *args), message)


def test_bad_prompts_files_are_named_with_their_line(embedded_base, cli_run, tmp_path):
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "Hi"}\n{"text": "Yo"}\n', encoding="utf-8")
    _one_line_error(cli_run("generate", "--base", "tiny-gpt2", "--prompts", bad), f'{bad}:2: expected an object whose "prompt" holds text')
    bad.write_text('{"prompt": "Hi"}\nnot json\n', encoding="utf-8")
    _one_line_error(cli_run("generate", "--base", "tiny-gpt2", "--prompts", bad), f"{bad}:2: invalid JSON")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    _one_line_error(cli_run("generate", "--base", "tiny-gpt2", "--prompts", empty), f"{empty}: the file holds no prompts")


def test_a_refused_system_prompt_imports_nothing_heavy(recorded_versions):
    probe = "import json, sys\nfrom ftreg.cli import cli\ntry:\n    cli(sys.argv[1:])\nfinally:\n    print('HEAVY=' + json.dumps([m for m in %r if m in sys.modules]))" % (HEAVY_MODULES,)
    result = subprocess.run([sys.executable, "-c", probe, "generate", "--adapter", "support", "--system", "Be brief.", "Hi"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "has no system prompt" in result.stderr, result.stderr
    assert json.loads(result.stdout.rsplit("HEAVY=", 1)[1]) == []
