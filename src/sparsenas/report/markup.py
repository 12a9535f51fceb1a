"""Report blocks and their two renderings: GitHub markdown and one self-contained HTML page.

A report is a list of blocks, built once and rendered twice, so the markdown and the HTML can never
disagree.

Written by hand rather than as a jinja2 template (docs/library_choices.md): a template with
autoescape renders the same page (equal after unescaping) in 16 lines against `to_html`'s 28, but
1.9x slower, with jinja2 imported though not declared (it comes with torch), and for markdown no
library helps: jinja2 does not escape markdown and renderers turn markdown into HTML, not text into
literal markdown. Every text slot of every block kind is checked escaped (tests/test_report_text.py).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from typing import Any

# ("h1" | "h2" | "p", text) · ("ul", lines) · ("table", headers, rows) · ("fig", name, png, caption)
Block = tuple[Any, ...]

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.wide{overflow-x:auto;margin:1em 0}table{border-collapse:collapse;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}td{white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}li{margin:0.3em 0}"""


# bidirectional controls reorder the text around them on screen (U+202E shows "gpj.exe" as "exe.jpg"):
# a user string carrying one is shown with the control spelled out
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with bidirectional control characters spelled out, so it reads in the order it is stored.

    >>> print(visible("a\u202eb"))
    a\u202eb
    """
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# markdown punctuation that changes rendering wherever it stands (code, emphasis, strikethrough,
# GitHub math, table cells); the backslash first, so later escapes are not escaped again
_MD_ALWAYS = re.compile(r"([\\`*~|$])")
# "_" emphasizes only at a word boundary: snake_case stays readable
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# a "]" that would close a link or image ("](", "][") or a reference definition ("]:")
_MD_LINK = re.compile(r"\](?=[(\[:])")
# "<" that could open a tag, a comment or an autolink, "&" that could start an entity; "p < 0.05" and
# "<0.001" cannot, and stay readable in a terminal
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MD_ENTITY = re.compile(r"&(?=[A-Za-z0-9#])")
# what makes a line a quote, list item, task or reference definition when it starts one ("#": see md_escape)
_MD_LEAD = re.compile(r"^(?:[>+\-=\[]|\d+(?=[.)]))")


def md_escape(text: str, block: bool = False) -> str:
    """`text` as literal markdown: it renders as itself on GitHub and in CommonMark renderers, and
    opens no HTML. A newline becomes a space (it would end a table row or a paragraph). With
    `block`, the text starts a paragraph, list item or heading: what would make it a heading, quote,
    list or task there is escaped too, and every "#" (a heading's closing sequence).

    >>> print(md_escape("<script>|`x`| *a_b* _c_ [l](u) p < 0.05"))
    &lt;script>\\|\\`x\\`\\| \\*a_b\\* \\_c\\_ [l\\](u) p < 0.05
    >>> print(md_escape("1. # x", block=True))
    1\\. \\# x
    """
    s = re.sub(r"[\r\n]+", " ", visible(text))
    s = _MD_ALWAYS.sub(r"\\\1", s)
    s = _MD_UNDERSCORE.sub(r"\\_", s)
    s = _MD_LINK.sub(r"\\]", s)
    s = _MD_TAG.sub("&lt;", _MD_ENTITY.sub("&amp;", s))  # "&" first: the "&lt;" it adds is meant
    if block:
        s = _MD_LEAD.sub(lambda m: m[0] + "\\" if m[0][0].isdigit() else "\\" + m[0], s.replace("#", "\\#"))
    return s


def to_markdown(blocks: Sequence[Block]) -> str:
    """Render blocks as GitHub markdown; figures link to figures/<name>. Every text is literal
    (md_escape): a finder named "<b>|x" shows as itself and cannot add a column, a tag or a link.

    >>> print(to_markdown([("h2", "Answer"), ("table", ["a", "b"], [["1", "<b>|y"]])]), end="")
    ## Answer
    <BLANKLINE>
    | a | b |
    |---|---|
    | 1 | &lt;b>\\|y |
    """
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            out.append(f"{'#' * int(kind[1])} {md_escape(b[1], block=True)}")
        elif kind == "p":
            out.append(md_escape(b[1], block=True))
        elif kind == "ul":
            out.append("\n".join(f"- {md_escape(line, block=True)}" for line in b[1]))
        elif kind == "table":
            lines = ["| " + " | ".join(map(md_escape, b[1])) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(map(md_escape, r)) + " |" for r in b[2]]
            out.append("\n".join(lines))
        elif kind == "fig":
            caption = md_escape(b[3])
            out.append(f"![{caption}](figures/{b[1]})\n\n*{caption}*")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Sequence[Block]) -> str:
    """Render blocks as one self-contained HTML page: inline CSS, figures as data URIs, no JS. Every
    text is escaped; a table sits in a box that scrolls sideways when it is wider than the window.

    >>> "<h1>R &amp; D</h1>" in to_html([("h1", "R & D")])
    True
    """

    def e(text: str) -> str:
        return html.escape(visible(text))

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
            out.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')
        elif kind == "fig":
            data = base64.b64encode(b[2]).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(b[3])}"><figcaption>{e(b[3])}</figcaption></figure>')
    title = e(blocks[0][1]) if blocks else "sparsenas report"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )
