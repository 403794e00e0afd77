"""MkDocs hooks of the manual (``hooks:`` in mkdocs.yml): they change how pages are built, not what they say.

- A figure links to its full-size file, so a wide plot squeezed into the column opens readable.
"""

import re

_LINK = re.compile(r"<a\b.*?</a>", re.S)
_IMG = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"[^>]*>')


def link_figures(html: str) -> str:
    """Each ``<img src=...>`` outside a link becomes ``<a href=src><img></a>``; images in links stay."""
    out, last = [], 0
    for link in _LINK.finditer(html):
        out += [_IMG.sub(_figure_link, html[last:link.start()]), link.group(0)]
        last = link.end()
    return "".join(out) + _IMG.sub(_figure_link, html[last:])


def _figure_link(m: re.Match) -> str:
    return f'<a class="figure-link" href="{m.group(1)}" title="Open the full-size figure">{m.group(0)}</a>'


def on_page_content(html, page, config, files):
    return link_figures(html)
