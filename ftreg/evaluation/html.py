"""A comparison as one self-contained HTML page: inline CSS, loss curves as data URIs, no script, no network.

Every text in it (refs, dataset names, prompts, answers) comes from users or models, so all of it is escaped.
"""

from __future__ import annotations

import base64
from html import escape

from ftreg.evaluation.comparison import Comparison, MetricRow

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #59636e; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #d1d9e0; padding: .4rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } tbody tr:nth-child(even) td { background: #fafbfc; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: 700; background: #dafbe1 !important; }
.curves { display: flex; flex-wrap: wrap; gap: 1rem; } figure { margin: 0; } img { max-width: 34rem; width: 100%; border: 1px solid #d1d9e0; }
.answer { white-space: pre-wrap; } .reference { white-space: pre-wrap; color: #0a3069; }
"""


def render_html(comparison: Comparison) -> str:
    models = comparison.models
    title = f"ftreg compare: {' vs '.join(models)} on {comparison.dataset}"
    settings = ", ".join(f"{key} {value}" for key, value in comparison.settings.items() if value is not None)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(' vs '.join(models))}</h1>",
        f'<p class="meta">on {escape(comparison.dataset)} (<code>{escape(comparison.fingerprint)}</code>){escape(f"; {settings}" if settings else "")}</p>',
        "<h2>Metrics</h2>",
        '<table id="metrics"><thead><tr><th>metric</th>' + "".join(f"<th>{escape(model)}</th>" for model in models) + "</tr></thead><tbody>",
        *(_metric_row(row) for row in comparison.rows),
        "</tbody></table>",
        '<p class="meta">★ marks the best in its row; ↑ higher is better, ↓ lower is better.</p>',
        "<h2>Loss curves</h2>",
        '<div class="curves">' + "".join(_curve(model, curve) for model, curve in zip(models, comparison.curves)) + "</div>",
    ]
    if comparison.samples:
        parts += ["<h2>Answers</h2>", '<table id="samples"><thead><tr><th>prompt</th><th>reference</th>' + "".join(f"<th>{escape(model)}</th>" for model in models) + "</tr></thead><tbody>"]
        parts += [
            f'<tr><td class="answer">{escape(sample.prompt)}</td><td class="reference">{escape(sample.reference)}</td>'
            + "".join(f'<td class="answer">{escape(answer)}</td>' for answer in sample.answers) + "</tr>"
            for sample in comparison.samples
        ]
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _metric_row(row: MetricRow) -> str:
    arrow = "" if row.higher_is_better is None else " ↑" if row.higher_is_better else " ↓"
    cells = []
    for index, value in enumerate(row.values):
        if value is None:
            cells.append('<td class="number">-</td>')
        elif index in row.best:
            cells.append(f'<td class="number best">★ {value:.4g}</td>')
        else:
            cells.append(f'<td class="number">{value:.4g}</td>')
    return f"<tr><th>{escape(row.name)}{arrow}</th>{''.join(cells)}</tr>"


def _curve(model: str, curve: bytes | None) -> str:
    if curve is None:
        return f"<figure><figcaption>{escape(model)}: no loss curve recorded</figcaption></figure>"
    data = base64.b64encode(curve).decode("ascii")
    return f'<figure><img alt="loss curve of {escape(model)}" src="data:image/png;base64,{data}"><figcaption>{escape(model)}</figcaption></figure>'
