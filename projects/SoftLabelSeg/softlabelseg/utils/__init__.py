"""softlabelseg.utils: helpers shared by engine, data and evaluation.

- ``comm``: rank / world size / barriers / reductions, safe without ``torch.distributed``.
- ``fileio``: atomic writes (temporary file in the same folder, fsync, ``os.replace``) that respect the umask.
- ``factors``: training-resolution factors as fractions (``parse_factor``, ``factor_label``).
"""

from . import comm, fileio
from .fileio import atomic_write

__all__ = ["comm", "fileio", "atomic_write"]
