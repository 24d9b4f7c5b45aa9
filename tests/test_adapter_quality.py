"""The adapter learns the task: on training instructions, its greedy answers share clearly more
words with the trained responses than the bare base's answers do."""

import json
import re

import pytest

from ftreg.datasets.loading import dataset_path

SAMPLE = 8  # the first pairs of the bundled support data: fixed, so the test is repeatable


def word_recall(completion: str, reference: str) -> float:
    """Share of the reference's distinct words that the completion contains."""
    words = lambda text: set(re.findall(r"[a-z0-9']+", text.lower()))  # noqa: E731
    reference_words = words(reference)
    return len(words(completion) & reference_words) / len(reference_words)


@pytest.mark.slow
def test_adapter_answers_overlap_training_responses_more_than_base(cli_run, embedded_base, tmp_path):
    pairs = json.loads(dataset_path("builtin:support").read_text())[:SAMPLE]
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(pairs))
    trained = cli_run(
        "train", "--strategy", "lora8bit", "--dataset", sample, "--name", "support",
        # Enough steps to learn eight answers by heart: what is measured is that training reaches generation.
        "--epochs", "80", "--learning-rate", "1e-2", "--batch-size", "4", "--grad-accum", "1",
        "-o", "r=16", "-o", "alpha=32", "-o", "dropout=0", "--eval-split", "0",
    )
    assert trained.exit_code == 0, trained.output

    def answers(*model_args):
        result = cli_run("generate", *model_args, "--greedy", "--max-new-tokens", "48", "--json", *[p["instruction"] for p in pairs])
        assert result.exit_code == 0, result.output
        return [item["completion"] for item in json.loads(result.stdout)]

    adapter = [word_recall(a, p["response"]) for a, p in zip(answers("--adapter", "support"), pairs)]
    base = [word_recall(a, p["response"]) for a, p in zip(answers("--base", "tiny-gpt2", "--format", "instruction"), pairs)]
    adapter_mean, base_mean = sum(adapter) / SAMPLE, sum(base) / SAMPLE
    assert adapter_mean >= base_mean + 0.25, (adapter_mean, base_mean)
    assert adapter_mean >= 2 * base_mean, (adapter_mean, base_mean)
