"""Report blocks and their two renderings: GitHub markdown and one self-contained HTML page.

A report is a list of blocks, built once and rendered twice, so the markdown and the HTML can never
disagree.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Sequence

# ("h1" | "h2" | "p", text) · ("ul", lines) · ("table", headers, rows) · ("fig", name, png, caption)
Block = tuple[Any, ...]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}td{white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}li{margin:0.3em 0}"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub markdown; figures link to figures/<name>.

    >>> print(to_markdown([("h2", "Answer"), ("table", ["a", "b"], [["1", "x|y"]])]), end="")
    ## Answer
    <BLANKLINE>
    | a | b |
    |---|---|
    | 1 | x\\|y |
    """
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            out.append(f"{'#' * int(kind[1])} {b[1]}")
        elif kind == "p":
            out.append(b[1])
        elif kind == "ul":
            out.append("\n".join(f"- {line}" for line in b[1]))
        elif kind == "table":
            lines = ["| " + " | ".join(map(_md_cell, b[1])) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b[2]]
            out.append("\n".join(lines))
        elif kind == "fig":
            out.append(f"![{b[3]}](figures/{b[1]})\n\n*{b[3]}*")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Sequence[Block]) -> str:
    """Render blocks as one self-contained HTML page: inline CSS, figures as data URIs, no JS.

    >>> "<h1>R &amp; D</h1>" in to_html([("h1", "R & D")])
    True
    """
    e = html.escape
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{e(b[1])}</{kind}>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in b[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "fig":
            data = base64.b64encode(b[2]).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(b[3])}">'
                       f"<figcaption>{e(b[3])}</figcaption></figure>")
    title = e(blocks[0][1]) if blocks else "sparsenas report"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")
