"""MkDocs hooks of the manual (``hooks:`` in mkdocs.yml): they change how pages are built, not what they say.

- A figure links to its full-size file, so a wide plot squeezed into the column opens readable.
- A file under docs/ that is neither a page nor linked from one (data left beside a page) stays out of the
  site; the runs themselves live in results/, outside it.
- A page written whole by tools/make_report.py (each grid's tables) has no edit button: an edit there would
  be overwritten; its generator and runs are what change it.
- A repository path written as code (``projects/SoftLabelSeg/configs/...``) links to that file in the
  repository (``repo_url``), when the file exists.
"""

import json
import os
import posixpath
import re

from mkdocs.structure.files import InclusionLevel

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
    html = link_figures(html)
    if config["repo_url"]:
        root = os.path.dirname(os.path.abspath(config["config_file_path"]))
        html = link_repository_paths(html, root, config["repo_url"])
    return html


# Link targets in a page's Markdown: [text](target), ![alt](target), [name]: target, src="..." / href="...".
_TARGETS = re.compile(r"\]\(\s*<?([^)\s>]+)"  # inline link or image
                      r"|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$"  # reference definition
                      r"|\b(?:src|href)=\"([^\"]+)\"", re.M)  # raw HTML


def linked_files(pages: dict[str, str]) -> set[str]:
    """The files (docs-relative paths, ``/``-separated) that ``pages`` {docs-relative path: Markdown} link
    to; anchors, queries and absolute URLs are left out."""
    found = set()
    for src, text in pages.items():
        for m in _TARGETS.finditer(text):
            target = next(g for g in m.groups() if g).split("#", 1)[0].split("?", 1)[0]
            if not target or "://" in target or target.startswith(("mailto:", "/")):
                continue
            found.add(posixpath.normpath(posixpath.join(posixpath.dirname(src), target)))
    return found


def on_files(files, config):
    """A file under docs/ that is not a page is built into the site only where a page links to it: the site
    carries the pages and what they point at."""
    docs = os.path.abspath(config["docs_dir"])
    own = [f for f in files if os.path.abspath(f.abs_src_path or "").startswith(docs + os.sep)]
    pages = {f.src_uri: f.content_string for f in own if f.is_documentation_page()}
    keep = linked_files(pages) | {posixpath.normpath(str(p)) for p in config["extra_css"]} \
        | {posixpath.normpath(str(p)) for p in config["extra_javascript"]}
    for f in own:
        if not f.is_documentation_page() and f.src_uri not in keep:
            f.inclusion = InclusionLevel.EXCLUDED
    return files


_SKIP = re.compile(r"<a\b.*?</a>|<pre\b.*?</pre>|<h[1-6]\b.*?</h[1-6]>", re.S)
_CODE_PATH = re.compile(r"<code>([A-Za-z0-9_.][A-Za-z0-9_./-]*)</code>")


def _resolve(root: str, path: str) -> str | None:
    """A path as the manual writes it -> the path from the repository root, or None. Besides root-relative
    paths the manual names recipes from the project folder (``configs/...``) and modules from the package
    (``modeling/__init__.py``); other short folder names (``toycity/``) stay unresolved, being ambiguous."""
    candidates = [path]
    if path.startswith("configs/"):
        candidates.append("projects/SoftLabelSeg/" + path)
    if path.endswith(".py"):
        candidates.append("projects/SoftLabelSeg/softlabelseg/" + path)
    return next((c for c in candidates if os.path.exists(os.path.join(root, c))), None)


def link_repository_paths(html: str, root: str, repo_url: str, branch: str = "main") -> str:
    """``<code>path</code>`` outside links, code blocks and headings becomes a link to that file (``blob``)
    or folder (``tree``) in the repository, when ``path`` exists under ``root``; other code stays text."""
    def link(m: re.Match) -> str:
        path = m.group(1).rstrip("/")
        if "/" not in m.group(1) or ".." in path.split("/"):
            return m.group(0)
        found = _resolve(root, path)
        if found is None:
            return m.group(0)
        kind = "tree" if os.path.isdir(os.path.join(root, found)) else "blob"
        return f'<a href="{repo_url.rstrip("/")}/{kind}/{branch}/{found}">{m.group(0)}</a>'

    out, last = [], 0
    for skip in _SKIP.finditer(html):
        out += [_CODE_PATH.sub(link, html[last:skip.start()]), skip.group(0)]
        last = skip.end()
    return "".join(out) + _CODE_PATH.sub(link, html[last:])



def generated_pages(root: str, docs_dir: str) -> set[str]:
    """The pages (docs-relative) that tools/make_report.py writes whole: each grid's document in the evidence
    manifest (results/grids.json, paths relative to the repository ``root``)."""
    manifest = os.path.join(root, "results", "grids.json")
    if not os.path.isfile(manifest):
        return set()
    with open(manifest, encoding="utf-8") as f:
        grids = json.load(f).get("grids", [])
    pages = (g.get("document") or os.path.join(g["folder"], "ablation.md") for g in grids)
    return {os.path.relpath(os.path.join(root, page), docs_dir).replace(os.sep, "/") for page in pages}


def on_page_markdown(markdown, page, config, files):
    root = os.path.dirname(os.path.abspath(config["config_file_path"]))
    if page.file.src_uri in generated_pages(root, os.path.abspath(config["docs_dir"])):
        page.edit_url = None
    return markdown
