"""A report's blocks rendered as markdown and as one self-contained HTML page."""

from __future__ import annotations

import base64

from emofuse.evaluation.document import Figure, Heading, Para, Table, render_html, render_markdown

BLOCKS = [Heading(2, "Results"), Para("**UA** of `voice_cnn2d`"), Table(["model", "UA"], [["a|b", "71.2"]]),
          Figure("confusion", "Confusion *of* fold 1", b"\x89PNG fake")]


def test_markdown_escapes_cells_and_links_figures_beside_it():
    md = render_markdown(BLOCKS, figure_dir="figs")
    assert "## Results" in md and "**UA** of `voice_cnn2d`" in md
    assert "| a\\|b | 71.2 |" in md  # a pipe inside a cell does not split it
    assert "![Confusion *of* fold 1](figs/confusion.png)" in md


def test_html_is_one_page_with_the_figures_inside():
    page = render_html(BLOCKS, title="study <x>")
    assert "<title>study &lt;x&gt;</title>" in page
    assert "<strong>UA</strong> of <code>voice_cnn2d</code>" in page
    assert base64.b64encode(b"\x89PNG fake").decode("ascii") in page and "<em>of</em>" in page
    assert "<td>a|b</td>" in page
