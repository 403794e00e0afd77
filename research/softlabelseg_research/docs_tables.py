"""Tables of the manual (docs/) generated from the code, so a page never disagrees with the code it shows
(the ``train.*`` keys of docs/training.md, the error messages of docs/troubleshooting.md).

Each table is a generated block of its page (:mod:`.markdown_blocks`); :data:`PAGES` says which blocks
each page holds and which function writes each. ``tools/make_report.py`` rewrites them with the evidence
report, and its ``--check`` (and ``tests/test_docs.py``) fails when a committed page is stale.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .markdown_blocks import markdown_table, replace_block

__all__ = ["PAGES", "error_messages_table", "render_page", "render_pages", "train_keys_table"]


def train_keys_table() -> str:
    """Every ``train.*`` key of the schema (``engine.train_config``): key, default and meaning."""
    from softlabelseg.engine.train_config import train_key_docs

    rows = [(f"`{key}`", f"`{default}`", doc) for key, default, doc in train_key_docs()]
    return markdown_table(("key", "default", "meaning"), rows)


def error_messages_table() -> str:
    """Every error message a user can meet, by exception class, read from the source (:mod:`.docs_errors`)."""
    from .docs_errors import error_messages_table as table

    return table()


# page (relative to the repository root) -> {block name: function returning the block's text}
PAGES: dict[str, dict[str, Callable[[], str]]] = {
    "docs/training.md": {"train-keys": train_keys_table},
    "docs/troubleshooting.md": {"error-messages": error_messages_table},
}


def render_page(text: str, blocks: dict[str, Callable[[], str]]) -> str:
    """``text`` with every block of ``blocks`` rewritten, a blank line on each side of the table so
    Markdown reads it as its own paragraph."""
    for name, make in blocks.items():
        text = replace_block(text, name, f"\n{make().strip()}\n\n")
    return text


def render_pages(root: str) -> dict[str, str]:
    """{path under ``root``: the text it should hold} for every page of :data:`PAGES` that ``root`` holds (a
    copy of a few grids, as the tests make, has no manual)."""
    out = {}
    for page, blocks in PAGES.items():
        path = os.path.join(root, page)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            out[path] = render_page(f.read(), blocks)
    return out
