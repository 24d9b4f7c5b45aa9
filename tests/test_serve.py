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


@pytest.fixture(scope="module")
def served(_trained_registry, tmp_path_factory):
    """A registry with support-v1 (lora8bit), a chat-trained chatty-v1, and a server on it."""
    from ftreg.cli import cli

    home = tmp_path_factory.mktemp("serve") / "registry"
    shutil.copytree(_trained_registry[0], home)
    train = ["--registry", str(home), "train", "--strategy", "lora8bit", "--max-steps", "1", "--eval-split", "0", "--quiet"]
    for name, data in (("chatty", FIXTURES / "chat.jsonl"), ("support", FIXTURES / "instruction.json")):
        result = CliRunner().invoke(cli, [*train, "--name", name, "--dataset", str(data)])
        assert result.exit_code == 0, result.output
    port = _free_port()
    env = {**os.environ, "FTREG_HOME": str(home)}
    server = subprocess.Popen([sys.executable, "-m", "ftreg", "serve", "--port", str(port), "--api-key", KEY, "--max-adapters", "2", "--preload", "support-v1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {KEY}"}), timeout=5):
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert server.poll() is None, server.communicate()
        assert time.monotonic() < deadline, "the server did not start within 120 s"
        time.sleep(0.5)
    yield home, openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=60), base_url
    server.terminate()
    server.wait(timeout=30)


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


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda c: c.completions.create(model="nope-v1", prompt="x"), "NotFoundError", "nope"),
        (lambda c: c.completions.create(model="support-v1", prompt="x", temperature=5), "BadRequestError", "temperature"),
        (lambda c: c.completions.create(model="support-v1", prompt="x " * 2000, max_tokens=8), "BadRequestError", "context"),
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


def test_metrics_count_requests_by_endpoint_and_status(served):
    _, client, base_url = served
    client.completions.create(model="support-v1", prompt=QUESTION, max_tokens=2)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope-v1", prompt="x")
    request = urllib.request.Request(base_url.removesuffix("/v1") + "/metrics/", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    counts = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines() if line.startswith("ftreg_requests_total{")}
    assert counts['ftreg_requests_total{endpoint="/v1/completions",status="200"}'] >= 1
    assert counts['ftreg_requests_total{endpoint="/v1/completions",status="404"}'] >= 1
    assert "ftreg_resident_versions" in text and "ftreg_request_seconds_bucket" in text


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
