"""User strings in the report are text: figures draw them literally, report.md and report.html show
them without running them, trials.csv keeps a spreadsheet from running them; and the report's
files read well (wide tables scroll, the CSV is in the report's units with empty cells for no value)."""

from __future__ import annotations

import csv
import html
import io
import math
import re
from pathlib import Path

import matplotlib
import pytest
from matplotlib.backends.backend_agg import RendererAgg

from helpers import tiny_spec
from sparsenas.finders.base import register
from sparsenas.finders.random import Random
from sparsenas.protocol import run
from sparsenas.report import summary_cells, write_report
from sparsenas.report import figures
from sparsenas.report.csvfile import csv_cell
from sparsenas.report.markup import to_html, to_markdown
from sparsenas.report.derive import derive_all
from sparsenas.store import Store

from report_fixtures import trial

MATH = r"$\frac{a$"  # an even count of "$": matplotlib parsed it as mathtext and failed
NASTY = "<script>alert(1)</script>|`b`*[l](u)_x_ ~~s~~ & #1"


@register
class _Mathy(Random):
    name = MATH
    help = "test: a random mask under a name matplotlib would read as mathtext"
    control = False


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Every (string, ismath) the Agg renderer draws while the test runs."""
    calls: list[tuple[str, object]] = []
    draw = RendererAgg.draw_text

    def spy(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):  # type: ignore[no-untyped-def]
        calls.append((s, ismath))
        return draw(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    monkeypatch.setattr(RendererAgg, "draw_text", spy)
    return calls


def test_a_finder_named_like_mathtext_is_drawn_literally(tmp_path: Path, drawn: list[tuple[str, object]]) -> None:
    run(tiny_spec(finders=("dense", "random", MATH), sparsities=(0.5,), seeds=(0, 1), epochs=2), tmp_path)
    paths = write_report(tmp_path)
    assert (MATH, False) in drawn  # the legend entries, as plain text
    assert (f"{MATH} (no search)", False) in drawn
    assert not any(ismath and "frac" in s for s, ismath in drawn)  # (log-axis ticks are mathtext, rightly)
    assert r"\$\\frac{a\$ at node sparsity 0.5" in paths["md"].read_text()
    assert f"{MATH} at node sparsity 0.5" in paths["html"].read_text()


def test_figure_labels_ignore_the_users_matplotlibrc(drawn: list[tuple[str, object]]) -> None:
    trials = [trial(f, 0.5, seed, 0.9 + seed / 100, 5) for f in ("random", "$x$", "_mine") for seed in range(2)]
    with matplotlib.rc_context({"text.parse_math": False}):  # else "\$" would be drawn with its backslash
        figures.accuracy_vs_sparsity(summary_cells(trials, derive_all(trials)))
    assert ("$x$", False) in drawn
    assert ("\u200b_mine", False) in drawn  # a leading "_" would have hidden it from the legend


def _nasty_run(run_dir: Path) -> Path:
    with Store(run_dir) as s:
        s.set_spec({"dataset": "digits", "model": "<b>mlp</b>"})
        for finder, accs in (("random", [0.90, 0.91, 0.92]), (NASTY, [0.91, 0.91, 0.93])):
            for seed, acc in enumerate(accs):
                s.put(trial(finder, 0.5, seed, acc, 5))
    return run_dir


def test_markdown_and_html_show_user_strings_as_text(tmp_path: Path) -> None:
    paths = write_report(_nasty_run(tmp_path))
    md, page = paths["md"].read_text(), paths["html"].read_text()
    assert "<script" not in md and "<b>" not in md and "<script" not in page and "<b>" not in page
    assert html.escape(NASTY) in page and "digits with the &lt;b&gt;mlp&lt;/b&gt; parent" in page
    # the name's "|" is escaped: every row of the verdict table has the header's columns
    table = md.split("## Verdict table")[1].split("\n\n")[1].splitlines()
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1
    markdown_it = pytest.importorskip("markdown_it")
    shown = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    literal = NASTY.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert f"<td>{literal}</td>" in shown and f"<li>{literal} at node sparsity 0.5:" in shown
    for tag in ("<script", "<a ", "<code>", "<s>", "<em>x</em>", "<h1>#1"):  # nothing of the name became markup
        assert tag not in shown, tag


def test_wide_tables_scroll_sideways(tmp_path: Path) -> None:
    page = write_report(_nasty_run(tmp_path))["html"].read_text()
    assert page.count("<table>") == page.count('<div class="wide"><table>') >= 4
    assert page.count("</table></div>") == page.count("<table>")
    assert ".wide{overflow-x:auto" in page


def test_csv_cells_are_spreadsheet_safe() -> None:
    assert [csv_cell(v) for v in ("=1+2", "+x", "-x", "@SUM(A1)", "\tx", "\rx", "-inf", "1-2")] == [
        "'=1+2", "'+x", "'-x", "'@SUM(A1)", "'\tx", "'\rx", "'-inf", "1-2"]
    # numbers stay numbers, written or as text: a negative number is no formula
    assert [csv_cell(v) for v in (-0.5, "-0.5", "-1e-3", "+2", -3, "")] == [-0.5, "-0.5", "-1e-3", "+2", -3, ""]
    assert csv_cell(math.nan) == "" and csv_cell(math.inf) == ""


def test_trials_csv_in_percent_with_empty_cells_for_no_value(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        s.put(trial("=HYPERLINK(\"http://x\")", 0.5, 0, 0.9125, 4))
        s.put(trial("@cmd", 0.5, 1, math.nan, 2))  # diverged: no accuracy
    rows = list(csv.DictReader(io.StringIO(write_report(tmp_path)["csv"].read_text())))
    assert "final_test_acc" not in rows[0] and "best_val_test_acc" not in rows[0]
    done, diverged = sorted(rows, key=lambda r: r["seed"])
    assert done["finder"] == "'=HYPERLINK(\"http://x\")" and diverged["finder"] == "'@cmd"
    assert float(done["final_test_acc_pct"]) == pytest.approx(91.25) and float(done["best_val_test_acc_pct"]) == pytest.approx(91.25)
    assert diverged["final_test_acc_pct"] == "" and diverged["auc_val_acc_pct"] == ""
    assert done["slot"] == "" and done["latency_ms"] == "" and done["effective_sparsity"] == ""
    assert not any(v in ("nan", "-1") for r in rows for v in r.values())


def test_bidi_controls_in_user_strings_are_spelled_out():
    from sparsenas.report.markup import md_escape, to_html

    name = "evil\u202egpj.exe"  # shows as "evilexe.jpg" where the control acts
    assert "\u202e" not in md_escape(name) and "\u202e" not in to_html([("p", name)])
    assert "u202e" in md_escape(name) and "\\u202e" in to_html([("p", name)])


def test_every_text_slot_of_every_block_kind_is_escaped() -> None:
    # to_html escapes by hand (no template autoescape, see markup.py): each slot is checked here
    evil = "<img src=x onerror=alert(1)>\"'&\u202e"
    blocks = [("h1", evil), ("h2", evil), ("p", evil), ("ul", [evil, evil]), ("table", [evil, "b"], [[evil, evil]]),
              ("fig", "f.png", b"\x89PNG", evil)]
    page = to_html(blocks)
    assert "<img src=x" not in page and "\u202e" not in page and "&quot;&#x27;&amp;\\u202e" in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") == 11  # title, h1, h2, p, 2 li, th, 2 td, alt, caption
    md = to_markdown(blocks)
    assert "<img" not in md and "\u202e" not in md
