"""The bundled support data: built from its intents, and its held-out split really held out."""

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ftreg.datasets.loading import dataset_path

ROOT = Path(__file__).resolve().parent.parent


def fold(question: str) -> str:
    """Case, punctuation and spacing folded away: "Return policy?" and "return  policy" are one question."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", question.lower())).strip()


def _pairs(name):
    return json.loads(dataset_path(f"builtin:{name}").read_text())


def test_no_held_out_question_appears_in_training_even_folded():
    train = {fold(pair["instruction"]) for pair in _pairs("support")}
    test = [fold(pair["instruction"]) for pair in _pairs("support-test")]
    assert len(test) == len(set(test)), "a held-out question is repeated"
    assert [question for question in test if question in train] == []


def test_every_held_out_answer_is_one_training_teaches():
    """A support bot is judged on questions it never saw about things it was taught: every
    intent of the test split is in training, asked in other words."""
    taught = Counter(pair["response"] for pair in _pairs("support"))
    test = _pairs("support-test")
    assert all(taught[pair["response"]] >= 6 for pair in test)
    assert len({pair["response"] for pair in test}) >= 50 and len(_pairs("support")) >= 600


def test_the_shipped_splits_are_what_the_intents_build():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_support_data.py"), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_quickstart_recipe_is_valid_and_trains_on_every_training_pair(cli_run):
    result = cli_run("train", "--config", ROOT / "recipes" / "support-tiny-gpt2.toml", "--print-config")
    assert result.exit_code == 0, result.output
    assert 'eval_dataset = "builtin:support-test"' in result.stdout and "eval_split = 0.0" in result.stdout
