"""Tables of the manual (docs/) generated from the code, so a page never disagrees with the code it shows
(the ``train.*`` keys of docs/training.md, the error messages of docs/troubleshooting.md).

A generated table sits in a page between two marker lines, ``<!-- <name>:start -->`` and
``<!-- <name>:end -->``; :func:`render_page` replaces what lies between them and keeps the rest of the page.
:data:`PAGES` says which blocks each page holds and which function writes each block.
``tools/make_docs_tables.py`` rewrites the pages; ``tests/test_docs.py`` fails when a committed page
differs from what it would write.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["PAGES", "BlockError", "error_messages_table", "markdown_table", "render_page", "replace_block",
           "stale_pages", "train_keys_table", "write_pages"]


class BlockError(ValueError):
    """A page lacks the markers of a generated block, or holds them more than once or out of order."""


def _cell(text: str) -> str:
    """One table cell: line breaks folded, pipes and HTML's ``<``, ``>``, ``&`` escaped outside code spans,
    so the text cannot break the table nor be read as a tag (``model_<iter>.pth``)."""
    parts = " ".join(str(text).split()).split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside `code spans`
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def train_keys_table() -> str:
    """Every ``train.*`` key of the schema (``engine.train_config``): key, default and meaning."""
    from .engine.train_config import train_key_docs

    rows = [(f"`{key}`", f"`{default}`", doc) for key, default, doc in train_key_docs()]
    return markdown_table(("key", "default", "meaning"), rows)


def error_messages_table() -> str:
    """Every error message a user can meet, by exception class, read from the source (``doc_errors``)."""
    from .doc_errors import error_messages_table as table

    return table()


# page (relative to the repository root) -> {block name: function returning the block's text}
PAGES: dict[str, dict[str, Callable[[], str]]] = {
    "docs/training.md": {"train-keys": train_keys_table},
    "docs/troubleshooting.md": {"error-messages": error_messages_table},
}


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the lines between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced by
    ``body`` (blank lines around it, so Markdown reads the block as its own paragraph); the marker lines
    stay. Raises :class:`BlockError` naming the block when its markers are missing or repeated."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(rf"^{re.escape(start)}[ \t]*\n.*?^{re.escape(end)}[ \t]*$", re.S | re.M)
    found = pattern.findall(text)
    if len(found) != 1 or text.count(start) != 1 or text.count(end) != 1:
        raise BlockError(f"expected one '{start}' line followed by one '{end}' line, found {len(found)} "
                         f"such block(s); add the two marker lines where the table belongs")
    return pattern.sub(lambda _: f"{start}\n\n{body.strip()}\n\n{end}", text)


def render_page(text: str, blocks: dict[str, Callable[[], str]]) -> str:
    """``text`` with every generated block of ``blocks`` rewritten."""
    for name, make in blocks.items():
        text = replace_block(text, name, make())
    return text


def stale_pages(root: str | Path) -> list[str]:
    """The pages of :data:`PAGES` under ``root`` whose generated blocks differ from what
    :func:`render_page` writes (relative paths; empty when every page is current)."""
    root = Path(root)
    stale = []
    for page, blocks in PAGES.items():
        text = (root / page).read_text(encoding="utf-8")
        if render_page(text, blocks) != text:
            stale.append(page)
    return stale


def write_pages(root: str | Path) -> list[str]:
    """Rewrites the generated blocks of every page of :data:`PAGES` under ``root``; returns the pages that
    changed (relative paths)."""
    root = Path(root)
    changed = []
    for page, blocks in PAGES.items():
        path = root / page
        old = path.read_text(encoding="utf-8")
        new = render_page(old, blocks)
        if new != old:
            path.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed
