"""The evidence grid (label variant x training-resolution factor x seed) as ordinary training runs.

A grid point is (variant, factor, seed). Each point is one run of ``tools/lazyconfig_train_net.py`` with
LazyConfig overrides and its own output folder; a point whose ``sem_seg_evaluation.json`` exists is
finished and never trained again, an interrupted one resumes from its last checkpoint. A variant names how
the training targets are made (``VARIANTS``, the rows of ``data.label_targets``): the two nearest-neighbour
grids, soft labels with the recipe's image filter or with area, with multi-class pixels dropped, or
full-resolution labels. Each variant is compared seed by seed (paired differences) with the fair baseline,
centred nearest, and with top-left nearest, the labels of the common pipeline.

This module defines the grid, runs its points and reads their results back (:func:`collect`); the
statistics are in :mod:`.grid_stats`, the Markdown tables and the plot in :mod:`.grid_report`.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction

from softlabelseg.data.label_targets import BASELINE, CONTROL, LABEL_TARGETS, LabelTarget
from softlabelseg.utils.factors import parse_factor
from softlabelseg.utils.fileio import atomic_write

__all__ = ["BASELINE", "CONTROL", "RESULT_FILE", "VARIANTS", "GridPoint", "OverrideKeys", "Variant",
           "collect", "eval_point", "exit_on_sigterm", "extra_result_file", "is_finished", "make_grid",
           "parse_factor", "read_json", "run_point"]

RESULT_FILE = os.path.join("inference", "sem_seg_evaluation.json")
TIME_FILE = "ablation_time.json"


def extra_result_file(dataset: str) -> str:
    """Where :func:`eval_point` puts a point's scores on another dataset than the recipe's test set."""
    return os.path.join(f"inference_{dataset}", "sem_seg_evaluation.json")


# The grid's variants are the rows of the label-target table (display name, config settings, colour).
Variant = LabelTarget
VARIANTS = LABEL_TARGETS


@dataclass(frozen=True)
class OverrideKeys:
    """Config keys the grid sets (the defaults fit every recipe under ``projects/SoftLabelSeg/configs``)."""

    label_mode: str = "dataloader.train.mapper.label_mode"
    image_mode: str = "dataloader.train.mapper.image_mode"
    label_filter: str = "dataloader.train.mapper.label_filter"
    factor: str = "dataloader.train.mapper.factor"
    multi_class: str = "model.loss.soft.multi_class"
    label_smoothing: str = "model.loss.hard.label_smoothing"
    seeds: tuple[str, ...] = ("train.seed", "dataloader.train.seed")
    output_dir: str = "train.output_dir"
    test_dataset: tuple[str, ...] = ("dataloader.test.dataset", "dataloader.evaluator.dataset_name")
    eval_output_dir: str = "dataloader.evaluator.output_dir"


@dataclass(frozen=True)
class GridPoint:
    variant: str  # a key of VARIANTS
    factor: Fraction
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}_f{self.factor.numerator}of{self.factor.denominator}_s{self.seed}"

    def overrides(self, keys: OverrideKeys, output_dir: str,
                  label_smoothing: float | None = None) -> list[str]:
        """The point's config overrides; ``label_smoothing`` is required by variants that smooth."""
        v = VARIANTS[self.variant]
        out = [
            f"{keys.label_mode}={v.label_mode}",
            f"{keys.factor}={float(self.factor)!r}",
            f"{keys.output_dir}={output_dir}",
        ]
        if not v.multi_class:
            out.append(f"{keys.multi_class}=False")
        if v.label_smoothing:
            if label_smoothing is None:
                raise ValueError(f"variant {self.variant!r} needs a label-smoothing value "
                                 "(--label-smoothing)")
            out.append(f"{keys.label_smoothing}={label_smoothing!r}")
        if v.image_mode is not None:
            out.append(f"{keys.image_mode}={v.image_mode}")
        if v.label_filter is not None:
            out.append(f"{keys.label_filter}={v.label_filter}")
        return out + [f"{k}={self.seed}" for k in keys.seeds]


def make_grid(variants, factors, seeds, seeds_at: dict[Fraction, list[int]] | None = None) -> list[GridPoint]:
    """All points, seed by seed, coarsest factor first (the cheapest runs finish first).

    ``seeds_at`` restricts the seeds of some factors (e.g. ``{1/2: [0]}`` when 1/2 runs are costly).
    """
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    seeds_at = seeds_at or {}
    points = []
    for seed in seeds:
        for factor in sorted(factors):
            if seed not in seeds_at.get(factor, seeds):
                continue
            points.extend(GridPoint(v, factor, seed) for v in variants)
    return points


def is_finished(run_dir: str, result_file: str = RESULT_FILE) -> bool:
    """Whether ``run_dir`` holds ``result_file``, the point's evaluation."""
    return os.path.isfile(os.path.join(run_dir, result_file))


def run_point(point: GridPoint, config_file: str, root: str, extra: list[str], keys: OverrideKeys,
              train_script: str, log=print, heartbeat_s: float = 30.0,
              label_smoothing: float | None = None) -> float:
    """Train and evaluate one point unless finished; returns the seconds spent (0 when skipped).

    The run's console output goes to ``<run_dir>/ablation_run.log``, its wall time (summed over
    resumptions) to ``<run_dir>/ablation_time.json``, rewritten every ``heartbeat_s`` while the run goes on,
    so a runner that is killed loses at most that much of the time; a failed run raises with the log's tail.
    The same file sums the CPU seconds (user + system) of each invocation that ran to its end.
    """
    run_dir = os.path.join(root, point.name)
    if is_finished(run_dir):
        log(f"[skip] {point.name}: finished ({RESULT_FILE} present)")
        return 0.0
    # an earlier attempt (even one killed before its first checkpoint) is continued, never clobbered
    resume = any(os.path.isfile(os.path.join(run_dir, f)) for f in ("last_checkpoint", "config.yaml"))
    cmd = [sys.executable, train_script, "--config-file", config_file]
    cmd += ["--resume"] if resume else []
    cmd += point.overrides(keys, run_dir, label_smoothing) + list(extra)
    os.makedirs(run_dir, exist_ok=True)
    log(f"[run] {point.name}{' (resuming)' if resume else ''}")
    earlier = read_json(os.path.join(run_dir, TIME_FILE)) or {"seconds": 0.0, "invocations": 0}
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    returncode = _run_logged(
        cmd, run_dir, lambda: _write_timing(run_dir, earlier, time.perf_counter() - start), heartbeat_s)
    seconds = time.perf_counter() - start
    _write_timing(run_dir, earlier, seconds, _children_cpu_seconds() - cpu_start)
    _check_finished(point, run_dir, returncode, RESULT_FILE)
    log(f"[done] {point.name} in {seconds:.0f} s")
    return seconds


def eval_point(point: GridPoint, config_file: str, root: str, dataset: str, extra: list[str],
               keys: OverrideKeys, train_script: str, log=print,
               label_smoothing: float | None = None) -> bool:
    """Scores a finished point's final weights on ``dataset`` (``--eval-only --resume``) into
    ``<run_dir>/inference_<dataset>/``, unless done before; returns whether it ran. The point's own
    overrides apply, so the test images are made as its training images were."""
    run_dir = os.path.join(root, point.name)
    result = extra_result_file(dataset)
    if is_finished(run_dir, result):
        return False
    out = os.path.join(run_dir, os.path.dirname(result))
    cmd = [sys.executable, train_script, "--config-file", config_file, "--eval-only", "--resume"]
    cmd += point.overrides(keys, run_dir, label_smoothing) + list(extra)
    cmd += [f"{k}={dataset}" for k in keys.test_dataset] + [f"{keys.eval_output_dir}={out}"]
    log(f"[eval] {point.name} on {dataset}")
    _check_finished(point, run_dir, _run_logged(cmd, run_dir), result)
    return True


def _run_logged(cmd: list[str], run_dir: str, heartbeat=None, heartbeat_s: float = 30.0) -> int:
    """Runs ``cmd`` with its output appended to ``<run_dir>/ablation_run.log``; calls ``heartbeat`` every
    ``heartbeat_s`` while it runs. Returns the exit code."""
    with open(os.path.join(run_dir, "ablation_run.log"), "a") as logf:
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        try:
            while True:
                if heartbeat is not None:
                    heartbeat()
                try:
                    return proc.wait(timeout=heartbeat_s)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            # a runner that stops (Ctrl-C, SIGTERM through exit_on_sigterm, an error) stops its run too, so a
            # restarted runner never trains in the same folder next to an orphan
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def exit_on_sigterm() -> None:
    """Turns SIGTERM (``kill``, ``pkill``) into ``SystemExit``, so a runner that is stopped that way unwinds
    and stops the training run it started (:func:`run_point`) instead of leaving it running. SIGKILL cannot be
    caught: stop a runner's whole process group (``kill -- -PGID``) to be sure."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _check_finished(point: GridPoint, run_dir: str, returncode: int, result_file: str) -> None:
    if returncode != 0 or not is_finished(run_dir, result_file):
        with open(os.path.join(run_dir, "ablation_run.log")) as f:
            tail = "".join(f.readlines()[-20:])
        raise RuntimeError(
            f"run {point.name} failed (exit {returncode}); see {run_dir}/ablation_run.log:\n{tail}"
        )


def _children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _write_timing(run_dir: str, earlier: dict, seconds: float, cpu_seconds: float = 0.0) -> None:
    """Wall time of the earlier invocations plus this one's ``seconds`` so far (this one counted), and
    their CPU seconds plus ``cpu_seconds`` (known once this invocation's run has ended)."""
    timing = {"seconds": earlier["seconds"] + seconds, "invocations": earlier["invocations"] + 1,
              "cpu_seconds": earlier.get("cpu_seconds", 0.0) + cpu_seconds}
    atomic_write(os.path.join(run_dir, TIME_FILE), lambda f: f.write(json.dumps(timing).encode()))


def read_json(path: str):
    """The JSON in ``path``, or None when it is missing or unreadable (a run still going on)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def collect(points: list[GridPoint], root: str, result_file: str = RESULT_FILE) -> dict[GridPoint, dict]:
    """Metrics dict (mIoU, IoU-<class>, ...) of every finished point, plus ``_seconds`` (wall time of
    the run) and ``_iterations`` (``train.max_iter`` of its saved config) when known. ``result_file``:
    the evaluation to read (default the recipe's test set; :func:`extra_result_file` for another)."""
    results = {}
    for p in points:
        run_dir = os.path.join(root, p.name)
        res = read_json(os.path.join(run_dir, result_file))
        if res is None:
            continue
        metrics = dict(res["metrics"])
        timing = read_json(os.path.join(run_dir, TIME_FILE))
        metrics["_seconds"] = timing["seconds"] if timing else math.nan
        metrics["_cpu_seconds"] = timing.get("cpu_seconds", math.nan) if timing else math.nan
        metrics["_iterations"] = _max_iter(os.path.join(run_dir, "config.yaml"))
        results[p] = metrics
    return results


def _max_iter(config_yaml: str) -> float:
    try:
        from omegaconf import OmegaConf

        return float(OmegaConf.load(config_yaml).train.max_iter)
    except Exception:  # noqa: BLE001 - a missing or foreign config only loses this column
        return math.nan
