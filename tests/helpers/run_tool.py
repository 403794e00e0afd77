"""``python -m tests.helpers.run_tool TOOL ARGS...``, started in the repository root: runs the script TOOL
as ``python TOOL ARGS...`` would, in a process where ``tests.helpers`` imports.

A subprocess that trains a config of the stand-ins (``tests.helpers.standins``) needs that module
importable; ``python -m`` puts the working folder (the repository root) on the child's sys.path, as
pytest does for the suite, so neither PYTHONPATH nor sys.path is edited. torchrun takes it as ``-m``.
"""

import runpy
import sys

if __name__ == "__main__":
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
