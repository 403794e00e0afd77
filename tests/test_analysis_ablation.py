"""Evidence grid: grid shape, per-point overrides, skip/resume, paired differences and the tables."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import pytest
from softlabelseg_research.grid_report import calibration_table, format_p_value, markdown_tables, plot_miou
from softlabelseg_research.grid_stats import paired_p_value
from softlabelseg_research.sweep import (
    RESULT_FILE,
    GridPoint,
    OverrideKeys,
    collect,
    eval_point,
    extra_result_file,
    make_grid,
    parse_factor,
    run_point,
)

from tests.helpers.repo import CONFIGS, load_tool

CLASSES = ["road", "pole", "car"]


def _write_result(run_dir, miou, pole):
    os.makedirs(os.path.join(run_dir, "inference"), exist_ok=True)
    with open(os.path.join(run_dir, RESULT_FILE), "w") as f:
        json.dump({"metrics": {"mIoU": miou, "IoU-road": 90.0, "IoU-pole": pole, "IoU-car": 50.0}}, f)


def test_parse_factor():
    assert parse_factor("1/8") == Fraction(1, 8)
    assert parse_factor("0.25") == Fraction(1, 4)
    with pytest.raises(ValueError, match="must be in"):
        parse_factor("2")


def test_grid_order_names_and_fewer_seeds_at_costly_factors():
    grid = make_grid(["nearest_topleft", "nearest", "soft"], [Fraction(1, 4), Fraction(1, 8), Fraction(1, 2)],
                     [0, 1], {Fraction(1, 2): [0]})
    assert len(grid) == 3 * (3 + 2)
    assert grid[0] == GridPoint("nearest_topleft", Fraction(1, 8), 0)  # seed by seed, coarsest first
    assert [p.factor for p in grid[:9]] == [Fraction(1, 8)] * 3 + [Fraction(1, 4)] * 3 + [Fraction(1, 2)] * 3
    names = {p.name for p in grid}
    assert len(names) == len(grid) and "nearest_f1of8_s0" in names and "soft_f1of4_s1" in names
    assert "soft_f1of2_s1" not in names
    with pytest.raises(ValueError, match="unknown variant"):
        make_grid(["hard"], [Fraction(1, 8)], [0])


def test_overrides_set_every_grid_key():
    ov = GridPoint("soft_mc_off", Fraction(1, 8), 3).overrides(OverrideKeys(), "out/x")
    assert "dataloader.train.mapper.label_mode=soft" in ov
    assert "dataloader.train.mapper.factor=0.125" in ov
    assert "model.loss.soft.multi_class=False" in ov
    assert "train.output_dir=out/x" in ov
    assert "train.seed=3" in ov and "dataloader.train.seed=3" in ov
    assert not any("image_mode" in o for o in ov)  # the recipe's filter
    area = GridPoint("soft_area", Fraction(1, 4), 0).overrides(OverrideKeys(), "o")
    assert "dataloader.train.mapper.image_mode=torch:area" in area
    assert "dataloader.train.mapper.label_mode=nearest_topleft" in GridPoint(
        "nearest_topleft", Fraction(1, 8), 0).overrides(OverrideKeys(), "o")
    assert "dataloader.train.mapper.label_mode=full_res" in GridPoint(
        "full_res", Fraction(1, 8), 0).overrides(OverrideKeys(), "o")
    assert not any("multi_class" in o for o in area)  # the recipe's loss as it is
    smoothed = GridPoint("nearest_ls", Fraction(1, 8), 0).overrides(OverrideKeys(), "o", label_smoothing=0.07)
    assert "model.loss.hard.label_smoothing=0.07" in smoothed
    assert "dataloader.train.mapper.label_mode=nearest" in smoothed
    with pytest.raises(ValueError, match="label-smoothing"):
        GridPoint("nearest_ls", Fraction(1, 8), 0).overrides(OverrideKeys(), "o")
    label_only = GridPoint("soft_area_label", Fraction(1, 8), 0).overrides(OverrideKeys(), "o")
    assert "dataloader.train.mapper.label_filter=torch:area" in label_only
    assert not any("image_mode" in o for o in label_only)
    image_only = GridPoint("nearest_area_image", Fraction(1, 8), 0).overrides(OverrideKeys(), "o")
    assert "dataloader.train.mapper.label_mode=nearest" in image_only
    assert "dataloader.train.mapper.image_mode=torch:area" in image_only
    assert not any("label_filter" in o for o in image_only)


def test_run_point_skips_finished_and_resumes_interrupted(tmp_path):
    # A stand-in training script: records its argv and writes the result file.
    script = tmp_path / "fake_train.py"
    script.write_text(
        "import json, os, sys\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith('train.output_dir=')][0]\n"
        "open(os.path.join(out, 'argv.json'), 'w').write(json.dumps(sys.argv))\n"
        "os.makedirs(os.path.join(out, 'inference'))\n"
        "res = os.path.join(out, 'inference', 'sem_seg_evaluation.json')\n"
        "json.dump({'metrics': {'mIoU': 50.0}}, open(res, 'w'))\n"
    )
    p = GridPoint("soft", Fraction(1, 8), 0)
    root = str(tmp_path / "sweep")
    os.makedirs(os.path.join(root, p.name))
    open(os.path.join(root, p.name, "last_checkpoint"), "w").write("model_0000099.pth")
    quiet = lambda s: None  # noqa: E731
    assert run_point(p, "cfg.py", root, ["train.max_iter=5"], OverrideKeys(), str(script), log=quiet) > 0
    argv = json.load(open(os.path.join(root, p.name, "argv.json")))
    assert "--resume" in argv and "train.max_iter=5" in argv and "--config-file" in argv
    assert json.load(open(os.path.join(root, p.name, "ablation_time.json")))["invocations"] == 1
    os.remove(os.path.join(root, p.name, "argv.json"))
    assert run_point(p, "cfg.py", root, [], OverrideKeys(), str(script), log=lambda s: None) == 0
    assert not os.path.exists(os.path.join(root, p.name, "argv.json"))  # finished: not run again
    q = GridPoint("nearest", Fraction(1, 8), 0)  # killed before its first checkpoint: config.yaml only
    os.makedirs(os.path.join(root, q.name))
    open(os.path.join(root, q.name, "config.yaml"), "w").write("train: {}\n")
    run_point(q, "cfg.py", root, [], OverrideKeys(), str(script), log=quiet)
    assert "--resume" in json.load(open(os.path.join(root, q.name, "argv.json")))


def test_run_point_keeps_the_wall_time_on_disk_while_the_run_goes_on(tmp_path):
    """The time file is rewritten during the run (a killed runner loses at most one heartbeat of it), and
    a later invocation adds its time to the earlier ones, the killed ones included."""
    script = tmp_path / "slow_train.py"
    script.write_text(
        "import json, os, shutil, sys, time\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith('train.output_dir=')][0]\n"
        "time.sleep(1.0)\n"
        "shutil.copy(os.path.join(out, 'ablation_time.json'), os.path.join(out, 'seen_while_running.json'))\n"
        "os.makedirs(os.path.join(out, 'inference'))\n"
        "res = os.path.join(out, 'inference', 'sem_seg_evaluation.json')\n"
        "json.dump({'metrics': {'mIoU': 50.0}}, open(res, 'w'))\n"
    )
    p = GridPoint("soft", Fraction(1, 8), 0)
    run_dir = tmp_path / p.name
    run_dir.mkdir()
    (run_dir / "ablation_time.json").write_text(json.dumps({"seconds": 100.0, "invocations": 1}))  # killed
    seconds = run_point(p, "cfg.py", str(tmp_path), [], OverrideKeys(), str(script), log=lambda s: None,
                        heartbeat_s=0.05)
    seen = json.loads((run_dir / "seen_while_running.json").read_text())
    assert seen["invocations"] == 2 and 100.0 < seen["seconds"] < 100.0 + seconds
    final = json.loads((run_dir / "ablation_time.json").read_text())
    assert {k: final[k] for k in ("seconds", "invocations")} == {
        "seconds": pytest.approx(100.0 + seconds), "invocations": 2}
    assert 0.0 <= final["cpu_seconds"] < seconds  # the fake run sleeps: less CPU than wall time


def test_run_point_records_the_cpu_seconds_of_the_run(tmp_path):
    script = tmp_path / "busy_train.py"
    script.write_text(
        "import json, os, sys, time\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith('train.output_dir=')][0]\n"
        "end = time.process_time() + 0.5\n"
        "while time.process_time() < end:\n"
        "    pass\n"
        "os.makedirs(os.path.join(out, 'inference'))\n"
        "res = os.path.join(out, 'inference', 'sem_seg_evaluation.json')\n"
        "json.dump({'metrics': {'mIoU': 1.0}}, open(res, 'w'))\n"
    )
    p = GridPoint("soft", Fraction(1, 8), 0)
    run_point(p, "cfg.py", str(tmp_path), [], OverrideKeys(), str(script), log=lambda s: None)
    timing = json.loads((tmp_path / p.name / "ablation_time.json").read_text())
    assert timing["cpu_seconds"] >= 0.5
    assert collect([p], str(tmp_path))[p]["_cpu_seconds"] == timing["cpu_seconds"]


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM semantics")
def test_a_runner_stopped_with_sigterm_stops_the_training_run_it_started(tmp_path):
    """A killed runner must not leave its training process going: a restarted runner would otherwise train
    in the same folder next to it."""
    script = tmp_path / "long_train.py"
    script.write_text(
        "import os, sys, time\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith('train.output_dir=')][0]\n"
        "open(os.path.join(out, 'child.pid'), 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    runner = tmp_path / "runner.py"
    runner.write_text(
        "from fractions import Fraction\n"
        "from softlabelseg_research.sweep import GridPoint, OverrideKeys, exit_on_sigterm, run_point\n"
        "exit_on_sigterm()\n"
        f"run_point(GridPoint('soft', Fraction(1, 8), 0), 'cfg.py', {str(tmp_path)!r}, [], OverrideKeys(),\n"
        f"          {str(script)!r}, log=lambda s: None, heartbeat_s=0.05)\n"
    )
    proc = subprocess.Popen([sys.executable, str(runner)])
    pid_file = tmp_path / "soft_f1of8_s0" / "child.pid"
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    with pytest.raises(ProcessLookupError):  # reaped by the runner, not merely signalled
        os.kill(child, 0)
    assert json.loads((tmp_path / "soft_f1of8_s0" / "ablation_time.json").read_text())["invocations"] == 1


def test_eval_point_scores_final_weights_on_another_dataset_once(tmp_path):
    script = tmp_path / "fake_eval.py"
    script.write_text(
        "import json, os, sys\n"
        "key = 'dataloader.evaluator.output_dir='\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith(key)][0]\n"
        "os.makedirs(out)\n"
        "json.dump(sys.argv, open(os.path.join(out, 'argv.json'), 'w'))\n"
        "json.dump({'metrics': {'mIoU': 40.0}}, open(os.path.join(out, 'sem_seg_evaluation.json'), 'w'))\n"
    )
    p = GridPoint("soft", Fraction(1, 8), 2)
    os.makedirs(tmp_path / p.name)
    assert eval_point(p, "cfg.py", str(tmp_path), "camvid_sem_seg_val", ["x=1"], OverrideKeys(), str(script),
                      log=lambda s: None)
    out = tmp_path / p.name / os.path.dirname(extra_result_file("camvid_sem_seg_val"))
    argv = json.loads((out / "argv.json").read_text())
    assert {"--eval-only", "--resume", "x=1", "train.seed=2", "dataloader.train.mapper.factor=0.125",
            "dataloader.test.dataset=camvid_sem_seg_val",
            "dataloader.evaluator.dataset_name=camvid_sem_seg_val"} <= set(argv)
    assert f"train.output_dir={tmp_path / p.name}" in argv
    assert not eval_point(p, "cfg.py", str(tmp_path), "camvid_sem_seg_val", [], OverrideKeys(), str(script),
                          log=lambda s: None)  # done before: not run again
    results = collect([p], str(tmp_path), extra_result_file("camvid_sem_seg_val"))
    assert results[p]["mIoU"] == 40.0 and collect([p], str(tmp_path)) == {}


def test_run_point_failure_names_the_log(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("import sys\nprint('bad config key')\nsys.exit(3)\n")
    p = GridPoint("nearest", Fraction(1, 2), 0)
    with pytest.raises(RuntimeError, match="(?s)exit 3.*ablation_run.log.*bad config key"):
        run_point(p, "cfg.py", str(tmp_path), [], OverrideKeys(), str(script), log=lambda s: None)


def test_tables_pair_seeds_and_decompose_the_gain(tmp_path):
    grid = make_grid(["nearest_topleft", "nearest", "soft"], [Fraction(1, 8)], [0, 1])
    miou = {"nearest_topleft": (30.0, 34.0), "nearest": (40.0, 44.0), "soft": (41.0, 47.0)}
    for p in grid:
        _write_result(tmp_path / p.name, miou[p.variant][p.seed], pole=10.0 * (p.seed + 1))
    results = collect(grid, str(tmp_path))
    assert len(results) == 6
    ceilings = {("nearest_topleft", Fraction(1, 8)): 60.0, ("nearest", Fraction(1, 8)): 70.0,
                ("soft", Fraction(1, 8)): 72.0}
    md = markdown_tables(results, CLASSES, ceilings)
    assert "| nearest, centred grid | 1/8 | 2 | - | - | 42.00 ± 2.83 |" in md
    # paired to centred: soft - nearest = +1, +3 -> 2.00 ± 1.41, t = 2 on 1 degree of freedom, p = 0.295;
    # top-left - nearest = -10, -10: no spread, so no p-value
    centred, control = md.split("### Paired difference to nearest, top-left grid")
    assert "### Paired difference to nearest, centred grid" in centred
    assert "| soft | 1/8 | 2 | +2.00 ± 1.41 | 0.30 |" in centred
    assert "| nearest, top-left grid | 1/8 | 2 | -10.00 ± 0.00 | - |" in centred
    # paired to top-left: soft - top-left = +11, +13 -> t = 12, p = 0.053
    assert "| soft | 1/8 | 2 | +12.00 ± 1.41 | 0.05 |" in control
    assert "| nearest, centred grid | 1/8 | 2 | +10.00 ± 0.00 | - |" in control
    assert "| 1/8 | trained model (2 seeds) | +10.00 | +2.00 | +12.00 |" in md
    assert "| 1/8 | label ceiling | +10.00 | +2.00 | +12.00 |" in md
    assert "| soft | 1/8 | 72.00 | 44.00 | 28.00 |" in md  # ceiling vs trained
    assert "15.0" in md  # pole IoU over the two seeds (thin group and per-class table)
    assert "| labels | factor | " + " | ".join(CLASSES) + " | mIoU | seeds |" in md  # names in full
    one_seed = collect([p for p in grid if p.seed == 0], str(tmp_path))
    assert "| 1/8 | trained model (1 seed) | +10.00 | +1.00 | +11.00 |" in markdown_tables(one_seed, CLASSES)
    plot_miou(results, str(tmp_path / "m.png"))
    assert (tmp_path / "m.png").stat().st_size > 1000


@pytest.mark.parametrize("diffs, expected", [
    # two-sided tails of the t distribution: 1 - 2 atan(t) / pi (1 df), 1 - t / sqrt(2 + t^2) (2 df)
    ([1.0, 3.0], 1 - 2 * math.atan(2.0) / math.pi),
    ([1.0, 2.0, 3.0], 1 - 2 * math.sqrt(3) / math.sqrt(2 + 12)),
    ([-1.0, -2.0, -3.0], 1 - 2 * math.sqrt(3) / math.sqrt(2 + 12)),
])
def test_paired_p_value_matches_the_t_distribution(diffs, expected):
    assert paired_p_value(diffs) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("diffs", [[], [1.5], [2.0, 2.0, 2.0]])
def test_paired_p_value_is_undefined_without_spread(diffs):
    assert math.isnan(paired_p_value(diffs))


@pytest.mark.parametrize("p, text", [(0.1349, "0.13"), (0.0101, "0.01"), (0.0031, "0.003"),
                                     (0.0004, "< 0.001"), (math.nan, "-")])
def test_small_p_values_never_read_as_zero(p, text):
    assert format_p_value(p) == text


def test_cli_aggregate_only_on_finished_runs(tmp_path, monkeypatch):
    run_ablation = load_tool("run_ablation")
    root = tmp_path / "sweep"
    for p in make_grid(["nearest", "soft"], [Fraction(1, 8)], [0]):
        _write_result(root / p.name, 50.0, 5.0)

    class _Meta:
        stuff_classes = CLASSES

    monkeypatch.setattr("softlabelseg.data.MetadataCatalog.get", lambda name: _Meta)
    cfg = os.path.join(CONFIGS, "toycity", "tiny_soft.py")
    summary = tmp_path / "summary.csv"
    summary.write_text("factor,mode,recoverable_miou\n1/8,torch:nearest-exact (centred),70\n"
                       "1/8,torch:bilinear,72\n1/8,torch:nearest (top-left),60\n")
    rc = run_ablation.main(["--config-file", cfg, "--factors", "1/8", "--variants", "nearest", "soft",
                            "--seeds", "0", "--output", str(root), "--aggregate-only",
                            "--ceilings", str(summary)])
    assert rc == 0
    text = (root / "ablation.md").read_text()
    assert "| soft | 1/8 | 1 |" in text and "torch:bilinear" in text
    assert "| soft | 1/8 | 72.00 | 50.00 | 22.00 |" in text


def test_calibration_table_reads_prior_matching_results(tmp_path):
    grid = make_grid(["nearest", "soft"], [Fraction(1, 8)], [0, 1])
    os.makedirs(tmp_path / "calibration")
    for p in grid:
        gain = {"nearest": 0.0, "soft": 1.0 + 2 * p.seed}[p.variant]  # soft - nearest with offsets: +1, +3
        val = {"argmax": {"mIoU": 40.0, "thin": 9.0, "stuff": 59.0},
               "prior-matched": {"mIoU": 43.0 + p.seed + gain, "thin": 15.0, "stuff": 60.0}}
        (tmp_path / "calibration" / f"{p.name}.json").write_text(json.dumps({"val": val}))
    md = calibration_table(grid, str(tmp_path))
    assert "| soft | 1/8 | 2 | 40.00 -> 45.50 (+5.50) | 9.00 -> 15.00 (+6.00) |" in md
    assert md.rstrip().endswith("| +2.00 ± 1.41 (2) |")
    assert "| nearest, centred grid | 1/8 | 2 | 40.00 -> 43.50 (+3.50) |" in md
    assert calibration_table(grid[:1], str(tmp_path)).rstrip().endswith("| - |")  # the baseline alone
    assert calibration_table(grid, str(tmp_path / "none")) == ""
