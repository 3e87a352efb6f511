"""Tests of the report document: markdown and HTML from the same blocks, tables rendered by pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orchestrator.report.document import Doc


def test_doc__markdown_and_html_from_the_same_blocks(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG fake")
    doc = Doc()
    doc.heading(2, "Parameter `a|b`")
    doc.table(pd.DataFrame({"x": ["1|2"], "y": ["<b>"]}))
    doc.image(png, "caption")
    md, page = doc.to_markdown(), doc.to_html("t")
    assert "## Parameter `a|b`" in md and "| 1\\|2 | <b> |" in md and "![caption](p.png)" in md
    assert "<code>a|b</code>" in page and "&lt;b&gt;" in page and "data:image/png;base64," in page
