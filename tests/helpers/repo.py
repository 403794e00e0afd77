"""The repository as the tests see it: its folders, every recipe and model config (found by globbing, so
a new one is tested without editing a list) and the command-line tools, loaded as modules."""

import glob
import importlib.util
import os
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "projects", "SoftLabelSeg", "configs")
MODELS = os.path.join(CONFIGS, "common", "models")
TOOLS = os.path.join(REPO, "tools")


def recipes() -> list[str]:
    """Every recipe as ``<family>/<name>.py`` relative to ``CONFIGS``, sorted: ``configs/*/*.py`` except
    ``common/`` (the shared parts) and files starting with "_" (settings a family's recipes share)."""
    paths = glob.glob(os.path.join(CONFIGS, "*", "*.py"))
    return sorted(os.path.relpath(p, CONFIGS) for p in paths
                  if os.path.basename(os.path.dirname(p)) != "common"
                  and not os.path.basename(p).startswith("_"))


def model_configs() -> list[str]:
    """The name of every model config in ``configs/common/models`` (``hrnet_w48``, ...), sorted; the
    ``segmentor.py`` they share and files starting with "_" are no model."""
    names = (os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(MODELS, "*.py")))
    return sorted(n for n in names if n != "segmentor" and not n.startswith("_"))


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (to call its ``main``), without putting ``tools/`` on sys.path."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
