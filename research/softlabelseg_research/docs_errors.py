"""The manual's table of error messages, read from the source so it cannot drift from what the tools print.

Every ``raise <ProjectError>("...")`` in the project's code (``softlabel_ops/``, ``softlabelseg``,
``export/``, ``research/``, ``tools/``), where ``<ProjectError>`` is an exception class the project defines,
and every ``print("error: ...")`` of a tool is listed with the message as the user reads it: the parts
filled in at run time shown as ``<name>``. The command-line tools print these as one ``error: <message>``
line and exit with code 2; the model server answers them with the HTTP status of the refusal.
:data:`.docs_tables.PAGES` puts the table into ``docs/troubleshooting.md``.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ErrorSite", "SOURCES", "error_classes", "error_sites", "error_messages_table"]

# Where the project's code lives, relative to the repository root.
SOURCES = ("softlabel_ops", "projects/SoftLabelSeg/softlabelseg", "export", "research", "tools")
# Exceptions that never reach a user of the tools (the manual's own generator).
_INTERNAL = {"BlockError"}
_REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ErrorSite:
    """One message: the exception class (``None`` for a tool's own ``error:`` line), the message with its
    run-time parts as ``<name>``, and where it is raised (file relative to the root, function)."""

    kind: str | None
    message: str
    path: str
    function: str


def _files(root: Path):
    for source in SOURCES:
        yield from sorted((root / source).rglob("*.py"))


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def error_classes(root: Path = _REPO) -> dict[str, str]:
    """{class name: first line of its docstring} for every exception class the project defines (a class whose
    base is a built-in exception or another such class), internal ones left out."""
    bases: dict[str, list[str]] = {}
    docs: dict[str, str] = {}
    for path in _files(root):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [n for n in map(_name, node.bases) if n]
                docs[node.name] = (ast.get_docstring(node) or "").split("\n\n")[0].replace("\n", " ")
    builtin = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    found: dict[str, str] = {}
    changed = True
    while changed:  # a class counts once one of its bases does
        changed = False
        for name, parents in bases.items():
            if name not in found and any(p in found or p in builtin for p in parents):
                found[name] = docs[name]
                changed = True
    return {n: d for n, d in found.items() if n not in _INTERNAL}


def _constants(tree: ast.Module) -> dict[str, str]:
    """A module's top-level string constants (``INPUT_IMAGE = "image"``), so messages show their values."""
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            out[node.targets[0].id] = node.value.value
    return out


def _template(node: ast.expr, constants: dict[str, str]) -> str | None:
    """The message of a string, f-string or concatenation of them, run-time parts as ``<name>`` (a module
    constant as its value); None for anything else (a variable, a call)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value.value, ast.Name) and value.value.id in constants:
                parts.append(constants[value.value.id])
            else:
                expr = value.value
                while isinstance(expr, (ast.Call, ast.Subscript)):
                    expr = expr.func if isinstance(expr, ast.Call) else expr.value
                parts.append(f"<{_name(expr) or '...'}>")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left, constants), _template(node.right, constants)
        return None if left is None or right is None else left + right
    return None


def error_sites(root: Path = _REPO) -> list[ErrorSite]:
    """Every message a user can meet, in source order (file, then line)."""
    classes = error_classes(root)
    trees = {path.relative_to(root).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
             for path in _files(root)}
    seen: dict[str, set[str]] = {}
    for tree in trees.values():  # constants are often imported from a sibling module: take unambiguous ones
        for name, value in _constants(tree).items():
            seen.setdefault(name, set()).add(value)
    shared = {name: values.pop() for name, values in seen.items() if len(values) == 1}
    sites = []
    for rel, tree in trees.items():
        constants = {**shared, **_constants(tree)}
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = _name(node.func)
                text = _template(node.args[0], constants)
                if text is None or re.fullmatch(r"(error: )?<[^>]*>", text):  # passes another message on
                    continue
                if name in classes and _raised_or_returned(func, node):
                    sites.append((node.lineno, ErrorSite(name, text, rel, func.name)))
                elif name == "print" and text.startswith("error: "):
                    sites.append((node.lineno, ErrorSite(None, text[len("error: "):], rel, func.name)))
    ordered = sorted(dict.fromkeys(sites), key=lambda s: (s[1].path, s[0]))
    return list(dict.fromkeys(s for _, s in ordered))  # a function may build one message twice


def _raised_or_returned(func: ast.AST, call: ast.Call) -> bool:
    """Whether ``call`` is what a ``raise`` or ``return`` in ``func`` hands on (a helper builds the error)."""
    return any(isinstance(n, (ast.Raise, ast.Return)) and call in ast.walk(n) for n in ast.walk(func))


def _cell(text: str) -> str:
    """A message in a table cell: one line, pipes escaped, ``<``, ``>``, ``&`` escaped outside its code spans
    (inside them Markdown shows the characters as they are)."""
    parts = " ".join(text.split()).replace("|", "\\|").split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans
        parts = ["'".join(parts)]
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def error_messages_table(root: Path = _REPO) -> str:
    """Markdown: per exception class (with its docstring), the messages and where each is raised."""
    classes = error_classes(root)
    by_kind: dict[str | None, list[ErrorSite]] = {}
    for site in error_sites(root):
        by_kind.setdefault(site.kind, []).append(site)
    out = []
    for kind in sorted(by_kind, key=lambda k: (k is not None, k or "")):
        title = "A tool's own checks" if kind is None else f"`{kind}`"
        doc = "Printed by the tool itself." if kind is None else classes[kind]
        out += [f"### {title}", "", _cell(doc), "", "| message | raised in |", "| --- | --- |"]
        out += [f"| {_cell(s.message)} | `{s.path}` (`{s.function}`) |" for s in by_kind[kind]]
        out.append("")
    return "\n".join(out)
