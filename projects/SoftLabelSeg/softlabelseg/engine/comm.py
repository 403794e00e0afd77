"""Old import path of :mod:`softlabelseg.utils.comm` (the process-group helpers live there)."""

from ..utils.comm import *  # noqa: F403
from ..utils.comm import __all__  # noqa: F401
