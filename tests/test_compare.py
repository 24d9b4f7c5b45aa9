"""`ftreg compare`: the text table, the HTML report (rendered by headless Chromium), and both from real evaluations."""

import re

import pytest

import ftreg
from ftreg.evaluation.comparison import Comparison, MetricRow, Sample


def _comparison(answer="Start a return from the Orders page.", curve=None):
    rows = [
        MetricRow("loss", False, [0.52, 1.31]),
        MetricRow("perplexity", False, [1.68, 3.71]),
        MetricRow("bleu", True, [27.7, 5.4]),
        MetricRow("rouge_l", True, [0.33, None]),
        MetricRow("answer_words", None, [32.7, 35.2]),
    ]
    samples = [Sample("### Instruction:\nHow do I return an item?\n\n### Response:\n", "Start a return from the Orders page within 30 days.", [answer, "Yes, and the cards."])]
    return Comparison("builtin:support-test", "sha256:1183a64672d7aa", ["support-v1", "tiny-gpt2-v1"], rows, samples, [curve, None], {"format": "instruction", "max_new_tokens": 64})


def test_the_text_table_marks_the_best_of_each_row_in_its_direction():
    lines = ftreg.comparison_table(_comparison()).splitlines()
    cells = {line.split()[0]: line.split()[1:] for line in lines[2:8]}
    assert cells["loss"] == ["↓", "0.52*", "1.31"] and cells["bleu"] == ["↑", "27.7*", "5.4"]
    assert cells["rouge_l"] == ["↑", "0.33*", "-"] and cells["answer_words"] == ["32.7", "35.2"]  # read, not ranked
    assert "  Start a return from the Orders page." in lines and "tiny-gpt2-v1:" in lines  # answers indented under their model


def test_the_html_report_escapes_every_text_and_needs_no_network():
    page = ftreg.comparison_html(_comparison(answer="<script>alert(1)</script> & more"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "<script" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert page.count('class="number best"') == 4  # loss, perplexity, bleu, rouge_l; answer length is not ranked


@pytest.mark.slow
def test_compare_writes_a_report_that_chromium_renders(support_adapter, registry, cli_run, tmp_path):
    from PIL import Image

    from browser import find_or_install, screenshot_and_dom

    chromium = find_or_install()
    report = tmp_path / "report.html"
    result = cli_run("compare", "support-v1", "tiny-gpt2-v1", "--dataset", support_adapter, "--samples", "2", "--html", report)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("support-v1 vs tiny-gpt2-v1 on ")
    assert registry.evaluations(registry.resolve("tiny-gpt2-v1"))  # each evaluation is stored with its version
    dom = screenshot_and_dom(chromium, report, tmp_path / "report.png")
    assert '<table id="metrics">' in dom and "<th>support-v1</th>" in dom and "<th>tiny-gpt2-v1</th>" in dom
    assert "perplexity" in dom and dom.count('class="number best"') >= 4 and 'src="data:image/png;base64,' in dom
    with Image.open(tmp_path / "report.png") as shot:
        pixels = shot.convert("RGB").resize((320, 400))
        colours = len(set(pixels.getdata()))
        inked = sum(1 for pixel in pixels.getdata() if sum(pixel) < 600)  # not the white background
    assert colours > 20 and inked > 1000, (colours, inked)  # text, table borders, the best cells' green and the curve


def test_compare_needs_two_versions(cli_run):
    result = cli_run("compare", "support-v1", "--dataset", "builtin:support-test")
    assert result.exit_code == 2 and "two versions or more" in result.stderr
