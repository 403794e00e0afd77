"""The manual renders as written on the site: no page loses lines to MkDocs' metadata reader, and generated
grid pages carry no empty rows."""
import json
import os
from fractions import Fraction
from pathlib import Path

import pytest
from mkdocs.utils.meta import get_data
from softlabelseg_research.grid_report import markdown_tables
from softlabelseg_research.sweep import RESULT_FILE, collect, make_grid

from tests.helpers.repo import REPO, load_tool

DOCS = Path(REPO) / "docs"


@pytest.mark.parametrize("page", sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")))
def test_no_page_starts_with_a_metadata_line(page):
    """MkDocs reads a leading ``key: value`` line (``Recipe: ...``) as metadata and drops it from the page."""
    text = (DOCS / page).read_text(encoding="utf-8")
    body, meta = get_data(text)
    assert not meta, f"docs/{page}: first line(s) {sorted(meta)} vanish on the site; start with a heading"
    assert body == text


def test_no_decomposition_row_without_a_shared_seed(tmp_path):
    """A grid without top-left nearest (the soft-area grid) has nothing to decompose: no section, no
    "trained model (0 seeds)" row of dashes."""
    grid = make_grid(["nearest", "soft"], [Fraction(1, 8)], [0, 1])
    for p in grid:
        os.makedirs(tmp_path / p.name / "inference")
        (tmp_path / p.name / RESULT_FILE).write_text(json.dumps({"metrics": {"mIoU": 40.0 + p.seed,
                                                                             "IoU-road": 90.0}}))
    md = markdown_tables(collect(grid, str(tmp_path)), ["road"])
    assert "Decomposition" not in md and "0 seeds" not in md
    assert "### Paired difference to nearest, centred grid" in md


def _hooks():
    return load_tool("mkdocs_hooks")


def test_figures_link_to_their_full_size():
    html = '<p><img alt="a" src="../figures/a.png" /></p><a href="x"><img src="b.png"></a>'
    out = _hooks().link_figures(html)
    assert '<a class="figure-link" href="../figures/a.png"' in out
    assert out.count("<a ") == 2 and '<a href="x"><img src="b.png"></a>' in out  # a linked image stays


def test_only_linked_run_data_is_kept():
    pages = {"evidence/README.md": "see [the log](runs/x/log.txt#L3), ![fig](../figures/f.png)\n"
                                   "[ref]: mainjob/result.json\nand https://example.org/a.json",
             "index.md": '<img src="figures/g.png"> [report](evidence/README.md#top) [web](https://e.org/x.png)'}
    assert _hooks().linked_files(pages) == {"evidence/runs/x/log.txt", "figures/f.png",
                                             "evidence/mainjob/result.json", "figures/g.png",
                                             "evidence/README.md"}


def test_repository_paths_link_to_the_repository(tmp_path):
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "demo.py").write_text("")
    html = ("<p><code>tools/demo.py</code> <code>tools/</code> <code>tools/nope.py</code> "
            '<code>demo.py</code></p><pre><code>tools/demo.py</code></pre>'
            '<a href="y"><code>tools/demo.py</code></a>')
    out = _hooks().link_repository_paths(html, str(tmp_path), "https://host/org/repo/")
    assert out.count('href="https://host/org/repo/blob/main/tools/demo.py"') == 1
    assert '<a href="https://host/org/repo/tree/main/tools"><code>tools/</code></a>' in out
    assert "<code>tools/nope.py</code> <code>demo.py</code></p><pre><code>tools/demo.py</code></pre>" in out


def test_recipes_and_modules_resolve_from_the_project(tmp_path):
    for f in ("projects/SoftLabelSeg/configs/toycity/tiny_soft.py",
              "projects/SoftLabelSeg/softlabelseg/data/mapper.py"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    html = ("<code>configs/toycity/tiny_soft.py</code> <code>data/mapper.py</code> "
            "<code>toycity/tiny_soft.py</code>")
    out = _hooks().link_repository_paths(html, str(tmp_path), "https://h/r")
    assert 'href="https://h/r/blob/main/projects/SoftLabelSeg/configs/toycity/tiny_soft.py"' in out
    assert 'href="https://h/r/blob/main/projects/SoftLabelSeg/softlabelseg/data/mapper.py"' in out
    assert out.endswith(" <code>toycity/tiny_soft.py</code>")  # relative to configs/: ambiguous, left as text


def test_error_messages_are_read_from_the_source(tmp_path):
    """The troubleshooting table lists the project's own errors, as the user reads them, and nothing else."""
    from softlabelseg_research.docs_errors import error_messages_table, error_sites

    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "errors.py").write_text(
        'KIND = "labels"\n'
        'class BadThing(ValueError):\n    """A thing that cannot be used."""\n'
        'class WorseThing(BadThing):\n    pass\n'
        'def check(path, n):\n'
        '    if n:\n        raise BadThing(f"{path!r} holds {len(n)} {KIND}; pass | fewer")\n'
        '    raise ValueError("a built-in error is not listed")\n'
        'def helper(x):\n    return WorseThing("made " + "here")\n'
        'def main(e):\n    print(f"error: {e}")\n    print("error: --input is missing; pass a folder")\n')
    sites = error_sites(tmp_path)
    assert [(s.kind, s.message, s.function) for s in sites] == [
        ("BadThing", "<path> holds <len> labels; pass | fewer", "check"),
        ("WorseThing", "made here", "helper"),
        (None, "--input is missing; pass a folder", "main")]
    table = error_messages_table(tmp_path)
    assert "### `BadThing`\n\nA thing that cannot be used." in table
    assert "| &lt;path&gt; holds &lt;len&gt; labels; pass \\| fewer | `tools/errors.py` (`check`) |" in table


_BAD_PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width"></head><body>
<article class="md-content__inner">
<h1>Page</h1>
<p>What they show:
- a list that became a paragraph</p>
<ol><li>one</li></ol><pre><code>code</code></pre><ol><li>two, numbered 1 again</li></ol>
<img src="missing.png" alt="gone">
<pre style="width:200px;overflow:auto"><code>a_line_far_too_long_for_a_200_px_box</code></pre>
<div style="width:3000px">wide</div>
</article></body></html>"""


@pytest.mark.skipif(load_tool("check_docs_site").find_chromium(None) is None, reason="no Chromium installed")
def test_the_browser_check_sees_what_a_reader_sees(tmp_path, capsys):
    """One built page holding each fault the check exists for: each is reported, at both widths."""
    (tmp_path / "index.html").write_text(_BAD_PAGE)
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "index.html").write_text(
        "<!doctype html><html><body><article class='md-content__inner'>"
        "<h1>Fine</h1><ol><li>a</li><li>b</li></ol></article></body></html>")
    assert load_tool("check_docs_site").main(["--site-dir", str(tmp_path), "--no-build"]) == 1
    out = capsys.readouterr().out
    for width in ("desktop, 1280 px", "phone, 390 px"):
        faults = [line for line in out.splitlines() if line.startswith(f"/ ({width})")]
        kinds = {f.split(": ", 1)[1].split(":")[0].split(" ")[0] for f in faults}
        assert kinds == {"list", "ordered", "broken", "code", "page"}, faults
    assert "good/" not in out
    assert "2 pages x 2 widths checked" in out


def test_the_grid_pages_are_known_as_generated():
    """Every grid page tools/make_report.py has written is known as generated (no edit button on the site;
    a grid with no finished run has no page yet), and no hand-written page is among them."""
    pages = _hooks().generated_pages(REPO, str(DOCS))
    written = {str(p.relative_to(DOCS)) for p in DOCS.glob("evidence/grids/*.md")}
    assert "evidence/grids/camvid_tiny_wide.md" in written and written <= pages
    assert not pages & {"evidence/README.md", "index.md", "troubleshooting.md"}
