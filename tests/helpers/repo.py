"""The repository as the tests see it: its folders and the command-line tools, loaded as modules."""

import importlib.util
import os
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "projects", "SoftLabelSeg", "configs")
TOOLS = os.path.join(REPO, "tools")


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (to call its ``main``), without putting ``tools/`` on sys.path."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
