"""Atomic writes: the mode follows the umask, a failed write keeps the old file, stale temporaries go."""

import os

import pytest
from softlabelseg.utils import comm
from softlabelseg.utils.fileio import atomic_write, remove_stale_temporaries


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_mode_follows_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = tmp_path / "x.json"
        atomic_write(str(path), lambda f: f.write(b"{}"))
    finally:
        os.umask(old)
    assert path.read_bytes() == b"{}"
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask


def test_failed_write_keeps_old_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "last_checkpoint"
    atomic_write(str(path), lambda f: f.write(b"model_0000009.pth"))

    def boom(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="no space left.*last_checkpoint|last_checkpoint.*no space left"):
        atomic_write(str(path), boom)
    assert path.read_bytes() == b"model_0000009.pth"
    assert os.listdir(tmp_path) == ["last_checkpoint"]


def test_remove_stale_temporaries_only_touches_tmp_files(tmp_path):
    (tmp_path / ".tmp_model_final.pth.abc123").write_bytes(b"partial")
    (tmp_path / "model_final.pth").write_bytes(b"good")
    removed = remove_stale_temporaries(str(tmp_path))
    assert [os.path.basename(p) for p in removed] == [".tmp_model_final.pth.abc123"]
    assert os.listdir(tmp_path) == ["model_final.pth"]


def test_comm_without_process_group():
    assert comm.rank_and_world() == (0, 1)
    assert not comm.is_distributed() and comm.is_main_process()
