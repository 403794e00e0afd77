"""The command-line entry (tools/lazyconfig_train_net.py -> softlabelseg.engine.cli) on stand-in parts:
output folder layout, eval-only, --resume, and a real SIGKILL + --resume equal to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from softlabelseg.engine.cli import main

from tests.helpers.repo import REPO, TOOLS
from tests.helpers.standins import write_standin_config

TOOL = os.path.join(TOOLS, "lazyconfig_train_net.py")
# The tool in a process of its own, which imports the stand-ins of the config: tests.helpers.run_tool,
# started in the repository root, runs the tool as `python TOOL ...` would (the stand-ins' config names
# tests.helpers.standins, importable there).
RUN_TOOL = ["-m", "tests.helpers.run_tool", TOOL]


def test_train_layout_eval_only_and_resume(tmp_path):
    cfg = write_standin_config(tmp_path)
    out = tmp_path / "out"
    main(["--config-file", cfg, f"train.output_dir={out}"])
    names = set(os.listdir(out))
    assert {
        "config.yaml",
        "log.txt",
        "metrics.json",
        "last_checkpoint",
        "model_final.pth",
        "inference",
    } <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert {"model_0000001.pth", "model_0000003.pth"} <= names
    lines = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    evals = [x for x in lines if "sem_seg/mIoU" in x]
    assert [x["iteration"] for x in evals] == [2, 6]  # eval_period=3 (after iteration index 2) and at the end
    assert "max_rss_mb" in lines[0] and "lr" in lines[0]
    final = json.loads((out / "inference" / "sem_seg_evaluation.json").read_text())
    log = (out / "log.txt").read_text()
    assert "eta:" in log and "| a " in log.replace("|   a", "| a ")  # per-class table in the log

    # the run's own config.yaml, evaluated into another folder: the training run's folder stays untouched
    main(
        [
            "--config-file",
            str(out / "config.yaml"),
            "--eval-only",
            f"train.output_dir={tmp_path / 'ev'}",
            f"train.init_checkpoint={out / 'model_final.pth'}",
        ]
    )
    again = json.loads((tmp_path / "ev" / "inference" / "sem_seg_evaluation.json").read_text())
    assert again["confusion_matrix"] == final["confusion_matrix"]
    assert (tmp_path / "ev" / "inference" / "config.yaml").is_file()
    assert sorted(os.listdir(out / "inference")) == ["sem_seg_evaluation.json"]

    main(["--config-file", cfg, "--resume", f"train.output_dir={out}", "train.max_iter=8"])
    ck = torch.load(out / "model_final.pth", weights_only=True)
    assert ck["iteration"] == 8
    assert "Starting training from iteration 6" in (out / "log.txt").read_text()


def test_bad_override_names_the_key(tmp_path):
    cfg = write_standin_config(tmp_path)
    with pytest.raises(KeyError, match="train.max_iters"):
        main(["--config-file", cfg, "train.max_iters=3"])


def _tool(cfg, *extra):
    cmd = [
        sys.executable,
        *RUN_TOOL,
        "--config-file",
        cfg,
        "dataloader.train.delay=0.15",
        "train.max_iter=16",
        "train.checkpointer.period=4",
        "train.eval_period=0",
        *extra,
    ]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    cfg = write_standin_config(tmp_path)
    ref = _tool(cfg, f"train.output_dir={tmp_path / 'ref'}")
    run = _tool(cfg, f"train.output_dir={tmp_path / 'run'}")
    pointer = tmp_path / "run" / "last_checkpoint"
    deadline = time.time() + 60
    while time.time() < deadline and not (pointer.exists() and pointer.read_text() == "model_0000007.pth"):
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert pointer.read_text() == "model_0000007.pth", "the run did not reach the 2nd checkpoint in time"
    assert not (tmp_path / "run" / "model_final.pth").exists()
    assert ref.wait(timeout=120) == 0, ref.stderr.read().decode()[-2000:]
    resumed = _tool(cfg, f"train.output_dir={tmp_path / 'run'}", "--resume")
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read().decode()[-2000:]
    a = torch.load(tmp_path / "ref" / "model_final.pth", weights_only=True)
    b = torch.load(tmp_path / "run" / "model_final.pth", weights_only=True)
    for k in a["model"]:
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=0, atol=0, msg=k)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    cfg = write_standin_config(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        *RUN_TOOL,
        "--config-file",
        cfg,
        f"train.output_dir={tmp_path / 'out'}",
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ck = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)
    assert len(ck["trainer"]["rng"]) == 2 and ck["iteration"] == 6
    assert (tmp_path / "out" / "log.txt.rank1").exists()
