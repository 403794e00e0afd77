"""The manual's generated tables agree with the code (docs/training.md's train.* keys, ...)."""
import pytest
from softlabelseg.engine.train_config import train_keys
from softlabelseg_research.docs_tables import PAGES, render_page, render_pages
from softlabelseg_research.markdown_blocks import BlockError, markdown_table, replace_block

from tests.helpers.repo import REPO


def test_generated_tables_are_current():
    stale = []
    for path, text in render_pages(REPO).items():
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                stale.append(path)
    assert len(render_pages(REPO)) == len(PAGES)
    assert not stale, (f"{', '.join(stale)}: a generated table differs from the code; run "
                       "python tools/make_report.py and commit the page")


def test_train_key_table_lists_every_key_once():
    with open(f"{REPO}/docs/training.md", encoding="utf-8") as f:
        page = f.read()
    for key in train_keys():
        assert page.count(f"| `train.{key}` |") == 1, key


def test_a_table_block_keeps_the_rest_of_the_page():
    page = "intro\n<!-- t:start -->\nold\n<!-- t:end -->\noutro\n"
    new = render_page(page, {"t": lambda: "| a |\n| --- |"})
    assert new == "intro\n<!-- t:start -->\n\n| a |\n| --- |\n\n<!-- t:end -->\noutro\n"
    assert render_page(new, {"t": lambda: "| a |\n| --- |"}) == new


@pytest.mark.parametrize("page", ["no markers\n", "<!-- t:end -->\n<!-- t:start -->\n",
                                  "<!-- t:start -->\n<!-- t:end -->\n<!-- t:start -->\n<!-- t:end -->\n"])
def test_replace_block_refuses_missing_or_repeated_markers(page):
    with pytest.raises(BlockError, match="t:start"):
        replace_block(page, "t", "x")


def test_cells_cannot_break_the_table():
    table = markdown_table(("k", "v"), [("a|b", "two\nlines"), ("model_<iter>.pth", "`<iter>`")])
    rows = table.splitlines()[2:]
    assert rows == ["| a\\|b | two lines |", "| model_&lt;iter&gt;.pth | `<iter>` |"]


def test_every_page_has_its_blocks():
    for page, blocks in PAGES.items():
        with open(f"{REPO}/{page}", encoding="utf-8") as f:
            render_page(f.read(), blocks)  # raises BlockError naming a missing block
