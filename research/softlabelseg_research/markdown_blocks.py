"""Generated blocks in hand-written Markdown: the one rule every generated table of the repository follows.

A page keeps its prose and hands the text between two marker lines, ``<!-- name:start -->`` and
``<!-- name:end -->``, to a generator: the manual's tables from the code (:mod:`.docs_tables`) and the
evidence report from the runs (:mod:`.evidence`). ``tools/make_report.py`` writes both; its ``--check``
(and the tests) fail on a stale block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["BlockError", "markdown_table", "replace_block"]


class BlockError(ValueError):
    """A page lacks the markers of a generated block, or holds them more than once or out of order
    (a generated block is never appended silently)."""


def _cell(text: str) -> str:
    """One table cell: line breaks folded, pipes and HTML's ``<``, ``>``, ``&`` escaped outside code spans,
    so the text cannot break the table nor be read as a tag (``model_<iter>.pth``)."""
    parts = " ".join(str(text).split()).split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside `code spans`
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (no trailing newline), every cell escaped."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with what lies between the line ``<!-- name:start -->`` and the following
    ``<!-- name:end -->`` set to ``content`` verbatim (end it with a newline); the markers stay. Raises
    :class:`BlockError` naming the block unless the page holds exactly one start line and one end after it."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(rf"^{re.escape(start)}[ \t]*\n.*?{re.escape(end)}", re.S | re.M)
    found = pattern.findall(text)
    if len(found) != 1 or text.count(start) != 1 or text.count(end) != 1:
        raise BlockError(f"expected one '{start}' line followed by one '{end}', found {len(found)} such "
                         f"block(s); add the two marker lines where the generated text belongs")
    return pattern.sub(lambda _: f"{start}\n{content}{end}", text)
