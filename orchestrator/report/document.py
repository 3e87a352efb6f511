"""The report as a document: a list of blocks rendered to markdown and to one self-contained HTML page.

Both renderings come from the same blocks, so they never drift; tables are rendered by pandas
(:meth:`pandas.DataFrame.to_markdown` through tabulate, :meth:`pandas.DataFrame.to_html`), plots are linked
from the markdown and embedded as base64 in the HTML.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
code{background:#f3f3f3;padding:0 .2em;border-radius:3px}
img{max-width:100%;margin:.5em 0}figure{margin:1em 0}figcaption{font-size:.85em;color:#555}
"""


class Doc:
    """A report as a list of blocks, rendered to markdown and to one self-contained HTML file.

    Text may hold ``code`` spans in backticks, shown as ``<code>`` in HTML.
    """

    def __init__(self) -> None:
        self.blocks: list[tuple[str, Any]] = []

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("heading", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("para", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, frame: pd.DataFrame) -> None:
        """A table of already formatted cells."""
        self.blocks.append(("table", frame.astype(str)))

    def image(self, path: Path, caption: str) -> None:
        """A PNG next to the report: linked from markdown, embedded as base64 in HTML."""
        self.blocks.append(("image", (Path(path), caption)))

    def to_markdown(self) -> str:
        """The report as markdown, blocks separated by a blank line."""
        parts: list[str] = []
        for kind, body in self.blocks:
            if kind == "heading":
                parts.append(f"{'#' * body[0]} {body[1]}")
            elif kind == "para":
                parts.append(body)
            elif kind == "bullets":
                parts.append("\n".join(f"- {item}" for item in body))
            elif kind == "table":
                parts.append(markdown_table(body))
            elif kind == "image":
                parts.append(f"![{body[1]}]({body[0].name})")
        return "\n\n".join(parts) + "\n"

    def to_html(self, title: str) -> str:
        """The report as one HTML page with its stylesheet and every plot embedded."""
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        ]
        for kind, body in self.blocks:
            if kind == "heading":
                parts.append(f"<h{body[0]}>{_inline_html(body[1])}</h{body[0]}>")
            elif kind == "para":
                parts.append(f"<p>{_inline_html(body)}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in body) + "</ul>")
            elif kind == "table":
                parts.append(html_table(body))
            elif kind == "image":
                data = base64.b64encode(body[0].read_bytes()).decode("ascii")
                caption = html.escape(body[1])
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                    f"<figcaption>{caption}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"


def markdown_table(frame: pd.DataFrame) -> str:
    """A frame of text cells as a markdown (pipe) table, cells as they are: no padding, no number parsing."""

    def cell(value: Any) -> str:  # a "|" would end the cell, a newline the row
        return str(value).replace("|", "\\|").replace("\n", " ")

    escaped = frame.map(cell).rename(columns=cell)
    return escaped.to_markdown(
        index=False, tablefmt="pipe", stralign=None, numalign=None, disable_numparse=True
    )


def html_table(frame: pd.DataFrame) -> str:
    """A frame of text cells as an HTML table, cells escaped and their ``code`` spans marked up."""
    marked = frame.map(_inline_html).rename(columns=_inline_html)
    return marked.to_html(index=False, escape=False, border=0)


def _inline_html(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(text), quote=False))
