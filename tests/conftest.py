"""Suite-wide settings."""
import os
import tempfile

import pytest
import torch

# Command lines the tests start in subprocesses (training, export, detectron2's tool) use one thread too:
# results are compared bit for bit with in-process runs, and float sums depend on the thread count.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# The file-check cache of the runs the tests start: a folder of this session, never the user's.
os.environ["SOFTLABELSEG_CACHE"] = tempfile.mkdtemp(prefix="softlabelseg-test-cache-")


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """One torch thread for the whole suite: the tensors here are small, and on a 2-core machine two
    spinning OpenMP threads (or several DDP workers each with two) stall each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
