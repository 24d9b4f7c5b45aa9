"""`ftreg serve` as a client sees it: a subprocess on a loopback port, driven by the official openai client."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import publish_files, republish

import ftreg
from ftreg.inference.options import GenerationOptions
from ftreg.registry import Registry

openai = pytest.importorskip("openai")
pytestmark = pytest.mark.slow

KEY = "sk-test-key"
FIXTURES = Path(__file__).parent / "fixtures"
QUESTION = "Where is my order?"
GREEDY = {"temperature": 0, "max_tokens": 12}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(home, *options):
    """``ftreg serve`` on a free loopback port as a subprocess, once it answers; returns it and its base URL."""
    port = _free_port()
    env = {**os.environ, "FTREG_HOME": str(home)}
    server = subprocess.Popen([sys.executable, "-m", "ftreg", "serve", "--port", str(port), "--api-key", KEY, *options],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {KEY}"}), timeout=5):
                return server, base_url
        except (urllib.error.URLError, ConnectionError):
            pass
        assert server.poll() is None, server.communicate()
        assert time.monotonic() < deadline, "the server did not start within 120 s"
        time.sleep(0.5)


def _publish_noise(registry):
    """noise-v1: a small GPT-2 checkpoint with random weights, which rambles on for as long as it is let."""
    import torch
    from safetensors.torch import save
    from transformers import GPT2Config, GPT2LMHeadModel

    base = registry.resolve("tiny-gpt2-v1")
    vocabulary = json.loads((base.path / "config.json").read_text())
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=1024, vocab_size=vocabulary["vocab_size"],
                        bos_token_id=vocabulary["bos_token_id"], eos_token_id=vocabulary["eos_token_id"])
    model = GPT2LMHeadModel(config)
    files = {name: (base.path / name).read_bytes() for name in ("tokenizer.json", "tokenizer_config.json")}
    files["config.json"] = config.to_json_string().encode()
    files["model.safetensors"] = save({key: value.contiguous() for key, value in model.state_dict().items() if key != "lm_head.weight"})
    return publish_files(registry, "noise", files, kind="checkpoint")


@pytest.fixture(scope="module")
def served(_trained_registry, tmp_path_factory):
    """A registry with support-v1 (lora8bit), a chat-trained chatty-v1, the random noise-v1, and a server on it."""
    from ftreg.cli import cli

    home = tmp_path_factory.mktemp("serve") / "registry"
    shutil.copytree(_trained_registry[0], home)
    train = ["--registry", str(home), "train", "--strategy", "lora8bit", "--max-steps", "1", "--eval-split", "0", "--quiet"]
    for name, data in (("chatty", FIXTURES / "chat.jsonl"), ("support", FIXTURES / "instruction.json")):
        result = CliRunner().invoke(cli, [*train, "--name", name, "--dataset", str(data)])
        assert result.exit_code == 0, result.output
    _publish_noise(Registry(home))
    server, base_url = _start(home, "--max-adapters", "2", "--max-bases", "2", "--preload", "support-v1")
    yield home, openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60), base_url
    server.terminate()
    server.wait(timeout=30)


def _metrics(base_url):
    """Each sample of the server's Prometheus text, by its name and labels."""
    request = urllib.request.Request(base_url.removesuffix("/v1") + "/metrics/", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in response.read().decode().splitlines() if line and not line.startswith("#")}


def _local(home, ref, **kwargs):
    """What `ftreg generate` gives in-process: the reference the server must match."""
    options = GenerationOptions(greedy=True, max_new_tokens=12, repetition_penalty=1.0)
    return ftreg.load(ref, registry=Registry(home)).generate(options=options, **kwargs)


def test_models_lists_versions_aliases_and_names_with_their_base(served):
    _, client, _ = served
    models = {model.id: model for model in client.models.list()}
    assert {"support-v1", "support-v2", "support", "chatty-v1", "tiny-gpt2-v1"} <= set(models)
    assert models["support-v1"].model_extra["parent"] == "tiny-gpt2-v1"


def test_completions_compose_the_adapter_exactly_as_generate_does_and_count_tokens(served):
    home, client, _ = served
    for ref in ("support-v1", "tiny-gpt2-v1", "support-v1", "support-v2", "chatty-v1", "support-v1"):  # swaps and an eviction (max 2)
        response = client.completions.create(model=ref, prompt=QUESTION, **GREEDY)
        assert response.choices[0].text == _local(home, ref, prompt=QUESTION), ref
    composed = ftreg.load("support-v1", registry=Registry(home))
    prompt_tokens = len(composed.encode(QUESTION, GenerationOptions(max_new_tokens=12)))
    response = client.completions.create(model="support-v1", prompt=QUESTION, **GREEDY)
    assert response.usage.prompt_tokens == prompt_tokens
    assert response.usage.total_tokens == prompt_tokens + response.usage.completion_tokens
    assert 0 < response.usage.completion_tokens <= 12


def test_chat_renders_the_dialogue_as_chat_training_did(served):
    home, client, _ = served
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": QUESTION}]
    response = client.chat.completions.create(model="chatty-v1", messages=messages, **GREEDY)
    assert response.choices[0].message.content == _local(home, "chatty-v1", messages=messages)
    assert response.choices[0].message.role == "assistant"
    one = client.chat.completions.create(model="support-v1", messages=[{"role": "user", "content": QUESTION}], **GREEDY)
    assert one.choices[0].message.content == _local(home, "support-v1", prompt=QUESTION)


def test_streaming_sends_chunks_before_the_end_that_add_up_to_the_answer(served):
    home, client, _ = served
    whole = client.completions.create(model="support-v1", prompt=QUESTION, temperature=0, max_tokens=24).choices[0].text
    pieces = [chunk.choices[0].text for chunk in client.completions.create(model="support-v1", prompt=QUESTION, temperature=0, max_tokens=24, stream=True)]
    assert "".join(pieces) == whole and sum(1 for piece in pieces if piece) > 1
    request = {"model": "chatty-v1", "messages": [{"role": "user", "content": QUESTION}], "temperature": 0, "max_tokens": 24}
    chat = list(client.chat.completions.create(**request, stream=True))
    assert chat[0].choices[0].delta.role == "assistant" and chat[-1].choices[0].finish_reason in ("stop", "length")
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chat) == client.chat.completions.create(**request).choices[0].message.content


def test_stop_n_and_seed(served):
    _, client, _ = served
    first = client.completions.create(model="support-v1", prompt=QUESTION, temperature=0, max_tokens=24).choices[0].text
    word = first.split()[1] if len(first.split()) > 1 else first[:2]
    stopped = client.completions.create(model="support-v1", prompt=QUESTION, temperature=0, max_tokens=24, stop=[word])
    assert stopped.choices[0].text == first[: first.index(word)].strip() and stopped.choices[0].finish_reason == "stop"
    sampled = client.completions.create(model="support-v1", prompt=QUESTION, max_tokens=8, n=3, seed=7)
    again = client.completions.create(model="support-v1", prompt=QUESTION, max_tokens=8, n=3, seed=7)
    assert len(sampled.choices) == 3 and [c.text for c in sampled.choices] == [c.text for c in again.choices]


def test_an_alias_move_is_seen_by_the_next_request(served):
    home, client, _ = served
    registry = Registry(home)
    registry.tag("support-v1", "prod")
    assert client.completions.create(model="support@prod", prompt=QUESTION, **GREEDY).choices[0].text == _local(home, "support-v1", prompt=QUESTION)
    registry.tag("support-v2", "prod")
    assert client.completions.create(model="support@prod", prompt=QUESTION, **GREEDY).choices[0].text == _local(home, "support-v2", prompt=QUESTION)


def test_a_version_published_while_serving_is_served_at_once_and_a_removed_one_no_longer(served):
    home, client, _ = served
    registry = Registry(home)
    republish(registry, "support-v1", "fresh")
    assert client.completions.create(model="fresh-v1", prompt=QUESTION, **GREEDY).choices[0].text == _local(home, "support-v1", prompt=QUESTION)
    assert "fresh-v1" in {model.id for model in client.models.list()}
    registry.remove("fresh-v1")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="fresh-v1", prompt=QUESTION, **GREEDY)
    assert "fresh-v1" not in {model.id for model in client.models.list()}


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda c: c.completions.create(model="nope-v1", prompt="x"), "NotFoundError", "nope"),
        (lambda c: c.completions.create(model="support-v1", prompt="x", temperature=5), "BadRequestError", "temperature"),
        (lambda c: c.completions.create(model="support-v1", prompt="x " * 2000, max_tokens=8), "BadRequestError", "context"),
        (lambda c: c.completions.create(model="support-v1", prompt="x", max_tokens=5000), "BadRequestError", "context"),
        (lambda c: c.completions.create(model="support-v1", prompt="x", max_tokens="many"), "BadRequestError", "max_tokens"),
        (lambda c: c.completions.create(model="support-v1", prompt=["x", 3]), "BadRequestError", "prompt"),
        (lambda c: c.chat.completions.create(model="support-v1", messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]), "BadRequestError", "single-turn"),
        (lambda c: c.chat.completions.create(model="support-v1", messages=[{"role": "robot", "content": "a"}]), "BadRequestError", "role"),
        (lambda c: c.completions.create(model="support-v1", prompt="x", n=2, stream=True), "BadRequestError", "stream"),
        (lambda c: c.with_options(api_key="wrong").completions.create(model="support-v1", prompt="x"), "AuthenticationError", "API key"),
    ],
)
def test_errors_are_openai_errors_with_a_message(served, call, error, words):
    _, client, _ = served
    with pytest.raises(getattr(openai, error)) as raised:
        call(client)
    assert words in raised.value.body["message"]


def test_metrics_count_requests_by_model_and_status_and_tokens_in_and_out(served):
    _, client, base_url = served
    before = _metrics(base_url)
    usage = client.completions.create(model="support-v1", prompt=QUESTION, max_tokens=2).usage
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope-v1", prompt="x")
    counts = _metrics(base_url)

    def grew(sample):
        return counts.get(sample, 0) - before.get(sample, 0)

    assert grew('ftreg_requests_total{endpoint="/v1/completions",model="support-v1",status="200"}') == 1
    assert grew('ftreg_requests_total{endpoint="/v1/completions",model="",status="404"}') == 1  # a name nobody has is no label
    assert grew('ftreg_prompt_tokens_total{model="support-v1"}') == usage.prompt_tokens
    assert grew('ftreg_completion_tokens_total{model="support-v1"}') == usage.completion_tokens
    assert "ftreg_resident_versions" in counts and 'ftreg_request_seconds_bucket{endpoint="/v1/completions",le="+Inf"}' in counts


def test_a_client_that_hangs_up_mid_stream_stops_its_generation(served):
    _, client, base_url = served
    whole = client.completions.create(model="noise-v1", prompt=QUESTION, temperature=0, max_tokens=900)
    assert whole.usage.completion_tokens == 900  # no early end of text: a finished stream would count 900 too
    before = _metrics(base_url).get('ftreg_completion_tokens_total{model="noise-v1"}', 0)
    stream = client.completions.create(model="noise-v1", prompt=QUESTION, temperature=0, max_tokens=900, stream=True)
    next(iter(stream))
    stream.close()  # hangs up
    deadline = time.monotonic() + 60
    while (counted := _metrics(base_url).get('ftreg_completion_tokens_total{model="noise-v1"}', 0) - before) == 0:
        assert time.monotonic() < deadline, "the abandoned stream never finished"
        time.sleep(0.05)
    assert counted < 900


def test_a_corrupted_adapter_is_refused_with_the_file_named(served):
    home, client, _ = served
    broken = republish(Registry(home), "support-v1", "broken")
    weights = broken.path / "adapter_model.safetensors"
    weights.chmod(0o644)
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    with pytest.raises(openai.ConflictError) as raised:
        client.completions.create(model="broken-v1", prompt=QUESTION, **GREEDY)
    assert "adapter_model.safetensors does not match its recorded sha256" in raised.value.body["message"]


def test_health_invalid_json_and_oversized_bodies_are_answered_not_500(served):
    _, _, base_url = served
    root = base_url.removesuffix("/v1")

    def call(path, data=None, headers=None):
        request = urllib.request.Request(root + path, data=data, headers={"Authorization": f"Bearer {KEY}", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, health = call("/healthz")
    assert status == 200 and health["status"] == "ok" and "support-v1" in health["resident"]
    status, body = call("/v1/completions", b'{"model": "support-v1", "prompt": ', {"Content-Type": "application/json"})
    assert status == 400 and "not JSON" in body["error"]["message"]
    status, body = call("/v1/completions", b'{"model": "support-v1"}', {"Content-Type": "application/json"})
    assert status == 400 and body["error"]["param"] == "prompt"
    connection = http.client.HTTPConnection(root.removeprefix("http://"), timeout=30)
    connection.putrequest("POST", "/v1/completions")  # says 5 MiB follow: refused before one is read
    for header, value in (("Authorization", f"Bearer {KEY}"), ("Content-Type", "application/json"), ("Content-Length", str(5 * 2**20))):
        connection.putheader(header, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "MiB" in json.loads(response.read())["error"]["message"]
    connection.close()


def test_listening_beyond_this_machine_needs_an_api_key(cli_run):
    result = cli_run("serve", "--host", "0.0.0.0")
    assert result.exit_code == 2 and "listening on 0.0.0.0 lets other machines in: set --api-key" in result.stderr


@pytest.mark.parametrize("flag, value", [("--max-adapters", "0"), ("--max-batch", "0"), ("--max-queue", "-1"), ("--batch-window-ms", "-5"), ("--port", "70000")])
def test_serving_limits_out_of_range_are_refused_before_anything_loads(cli_run, flag, value):
    result = cli_run("serve", flag, value)
    assert result.exit_code == 2 and flag in result.stderr and value in result.stderr


def test_a_full_queue_gets_429(served):
    home, _, _ = served
    server, base_url = _start(home, "--max-queue", "0")
    try:
        client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60)
        with pytest.raises(openai.RateLimitError) as raised:
            client.completions.create(model="support-v1", prompt=QUESTION, **GREEDY)
        assert "retry later" in raised.value.body["message"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_ones(served):
    import signal

    home, _, _ = served
    server, base_url = _start(home, "--preload", "noise-v1")
    client = openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60)
    stream = iter(client.completions.create(model="noise-v1", prompt=QUESTION, temperature=0, max_tokens=900, stream=True))
    chunks = [next(stream)]
    server.send_signal(signal.SIGTERM)
    time.sleep(1)  # uvicorn stops listening at once; the stream goes on
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
    chunks += list(stream)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert server.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn raises the signal again once it has shut down
