"""Suite-wide settings."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_intra_op_thread():
    """One torch thread for the whole suite: the tensors here are small, and on a 2-core machine two
    spinning OpenMP threads (or several DDP workers each with two) stall each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
