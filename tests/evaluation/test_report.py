"""The report renders what it is given, the same in markdown and HTML, with figures embedded in the HTML."""

from __future__ import annotations

import base64

from emofuse.evaluation.report import ReportData, ReportRow, write_report

LABELS = ["neutral", "happy", "sad"]


def _row(entry, protocol, ua, *, kind="model", leaky=False, members=(), references=(), n_folds=2, per_fold=None):
    return ReportRow(
        entry=entry, kind=kind, model="fusion_mean" if kind == "fusion" else "voice_logreg", description="",
        protocol=protocol, dataset="ravdess", leaky=leaky, seeds=[0], n_folds=n_folds, n_test=60, labels=LABELS,
        wa_mean=ua + 0.01, wa_std=0.02, ua_mean=ua, ua_std=0.03, f1_mean=ua - 0.01, f1_std=0.04,
        ci95={"ua": [ua - 0.05, ua + 0.05]}, confusion=[[8, 1, 1], [2, 7, 1], [0, 3, 7]],
        per_class_f1={"neutral": 0.7, "happy": 0.6, "sad": 0.65}, train_seconds=12.0, device="cpu",
        commits=["0123456789abcdef"], members=list(members), references=list(references),
        ua_per_fold=dict(per_fold or {}))


def test_report_tables_sections_and_embedded_figures(tmp_path):
    rows = [
        _row("a", "ravdess-6fold", 0.40, references=[{"metric": "wa", "value": 38.33, "source": "paper <x>",
                                                      "note": ""}]),
        _row("b|c", "ravdess-6fold", 0.50, per_fold={"seed0/fold1": 0.45, "seed0/fold2": 0.55, "seed0/fold3": 0.5}),
        _row("fused", "ravdess-6fold", 0.55, kind="fusion", members=["a", "b|c"],
             per_fold={"seed0/fold1": 0.55, "seed0/fold2": 0.5502, "seed0/fold3": 0.49}),
        _row("fused_old", "ravdess-6fold", 0.45, kind="fusion", members=["a", "b|c"]),  # no per-fold UA kept
        _row("a", "ravdess-random", 0.70, leaky=True, n_folds=1),
    ]
    data = ReportData(name="t", description="a test", notes=["reduced"], command="emofuse study x.yaml --out y",
                      commit="abc", created="today", rows=rows,
                      disabled=[{"entry": "text", "what": "text_bigru", "description": "later"}])
    md_path, html_path = write_report(data, tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    assert "| a | voice_logreg | 41.0 ± 2.0 | 40.0 ± 3.0 | 39.0 ± 4.0 | 35.0–45.0 | WA 38.33 (ours 41.0, +2.7) |" in md
    assert "b\\|c" in md  # a pipe in a name does not break the table
    # Fold by fold against the best member: above on fold1, level to 0.1 point on fold2, below on fold3.
    assert "| fused | ravdess-6fold | a 40.0, b\\|c 50.0 | 50.0 (b\\|c) | 55.0 ± 3.0 | +5.0 | 1 / 1 / 1 |" in md
    assert "| fused_old | ravdess-6fold | a 40.0, b\\|c 50.0 | 50.0 (b\\|c) | 45.0 ± 3.0 | -5.0 | — |" in md
    assert "| a | ravdess-random | 70.0 | ravdess-6fold | 40.0 ± 3.0 | +30.0 |" in md  # one fold: no spread
    assert "| a | voice_logreg | 71.0 | 70.0 | 69.0 |" in md
    assert "**Note.** reduced" in md and "emofuse study x.yaml --out y" in md and "| text | text_bigru | later |" in md
    assert "paper &lt;x&gt;" in page and "<x>" not in page  # escaped in HTML
    assert "<strong>fused</strong>" in page
    figures = sorted((tmp_path / "figures").iterdir())
    assert len(figures) == 6  # comparison, per-class, confusion for each of the two protocols
    for figure in figures:
        png = figure.read_bytes()
        assert png.startswith(b"\x89PNG")
        assert base64.b64encode(png).decode() in page
        assert f"figures/{figure.name}" in md
