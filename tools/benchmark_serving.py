#!/usr/bin/env python
"""Serving throughput from full-resolution images: PyTorch eager vs infer_onnx.py vs the C++ runner.

    python tools/benchmark_serving.py --runner build/cpp/softlabelseg_infer          # full grid
    python tools/benchmark_serving.py --runner build/cpp/softlabelseg_infer --factors 1/8 1/4 --threads 1

Each row serves the same 1024x2048 PNG files end to end (read, shrink by the factor with the
training filter, graph, bilinear upsampling to 1024x2048, argmax, write ``*_labels.png`` and
``*_overlay.png``) with one model at one resolution factor and thread count:
- eager: the model under ``torch.inference_mode`` in this process (``F.interpolate`` + argmax);
- python: ``export/infer_onnx.py``'s loop (``segment_files``) in this process on a static export;
- C++: ``softlabelseg_infer`` on the same export (its own timing line: wall and process CPU seconds).
Timings cover the image loop only (not model building, session creation or interpreter start) and
CPU seconds count every thread of the process. The runners' label PNGs are compared pixel by pixel.
Weights are random with calibrated BatchNorm (speed does not depend on the values). The images are
ToyCity val images upscaled to 1024x2048. On a machine shared with other jobs the two-thread rows
swing most: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from softlabelseg_export.exporter import export_onnx
from softlabelseg_export.random_models import paper_model
from softlabelseg_export.recipe import recipe_metadata
from softlabelseg_export.runtime import (
    OnnxSegmenter,
    colorize,
    input_size_for,
    list_images,
    overlay,
    read_image,
    resize_image,
    segment_files,
)
from softlabelseg_export.wrapper import ExportWrapper
from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
FULL = (1024, 2048)


def make_images(folder: Path, count: int) -> list[Path]:
    """``count`` 1024x2048 street scenes: ToyCity val images upscaled (bicubic)."""
    from softlabelseg.data import ToyCityParams
    from softlabelseg.data.datasets import load_toycity_semantic

    records = load_toycity_semantic(folder / "toycity", "val", ToyCityParams(num_train=1, num_val=count))
    paths = []
    for i, record in enumerate(records[:count]):
        image = cv2.imread(record["file_name"], cv2.IMREAD_COLOR)
        paths.append(folder / "images" / f"scene{i}.png")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(paths[-1]), cv2.resize(image, FULL[::-1], interpolation=cv2.INTER_CUBIC))
    return paths


def timed(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_eager(wrapper, meta, folder: Path, out: Path) -> None:
    """The Python runner's loop with PyTorch in place of ONNX Runtime."""
    out.mkdir(parents=True, exist_ok=True)
    for file in list_images(folder):
        image = read_image(file)
        small = resize_image(image, input_size_for(*image.shape[:2], meta), meta.image_resize)
        with torch.inference_mode():
            logits = wrapper(torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1)[None])))
            scores = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=False)
            labels = scores.argmax(1)[0].to(torch.uint8).numpy()
        cv2.imwrite(str(out / f"{file.stem}_labels.png"), labels)
        color = colorize(labels, meta.class_colors, meta.ignore_value)
        blended = cv2.cvtColor(overlay(image, color), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(out / f"{file.stem}_overlay.png"), blended)


def run_cpp(runner: str, model: Path, folder: Path, out: Path, threads: int) -> tuple[float, float]:
    cmd = [runner, "--model", str(model), "--input", str(folder), "--output", str(out),
           "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    found = re.search(r"in ([\d.e+-]+) s \(CPU ([\d.e+-]+) s\)", done.stdout)
    if not found:
        raise RuntimeError(f"unexpected output of the C++ runner: {done.stdout!r}")
    return float(found.group(1)), float(found.group(2))


def differing_pixels(a: Path, b: Path) -> int:
    total = 0
    for file in sorted(a.glob("*_labels.png")):
        x = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        y = cv2.imread(str(b / file.name), cv2.IMREAD_UNCHANGED)
        total += int((x != y).sum()) if y is not None else x.size
    return total


def bench_model(name, factors, threads_list, counts, images, runner, workdir: Path) -> list[dict]:
    cfg, model = paper_model(name, REPO)
    wrapper = ExportWrapper(model, "logits").eval()
    rows = []
    for factor, count in zip(factors, counts, strict=True):
        size = (round(FULL[0] * factor), round(FULL[1] * factor))
        meta = recipe_metadata(cfg, model, name)
        meta.resolution_factor = float(factor)
        path = workdir / f"{name}_{size[0]}x{size[1]}.onnx"
        export_onnx(wrapper, path, meta, size)
        folder = workdir / f"in_{count}"
        if not folder.exists():
            folder.mkdir()
            for image in images[:count]:
                os.symlink(image, folder / image.name)
        for threads in threads_list:
            torch.set_num_threads(threads)
            out = workdir / f"out_{name}_{size[0]}_{threads}"
            eager = timed(lambda: run_eager(wrapper, meta, folder, out / "eager"))  # noqa: B023
            seg = OnnxSegmenter(path, threads=threads)
            python = timed(lambda: segment_files(seg, folder, out / "python", progress=False))  # noqa: B023
            cpp = run_cpp(runner, path, folder, out / "cpp", threads)
            row = dict(model=name, factor=factor, size=size, threads=threads, n=count, eager=eager,
                       python=python, cpp=cpp, differ=differing_pixels(out / "python", out / "cpp"),
                       pixels=count * FULL[0] * FULL[1])  # fmt: skip
            rows.append(row)
            print(f"  {name} {size[0]}x{size[1]} {threads} thread(s), {count} images: images/s eager "
                  f"{count / eager[0]:.2f}, python {count / python[0]:.2f}, C++ {count / cpp[0]:.2f}; "
                  f"C++/python {python[0] / cpp[0]:.2f}x", flush=True)  # fmt: skip
        os.remove(path)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default=str(REPO / "build/cpp/softlabelseg_infer"), help="the C++ runner")
    parser.add_argument("--models", nargs="+", default=["hrnet_w48", "deeplabv3plus_r101"])
    parser.add_argument("--factors", nargs="+", default=["1/8", "1/4", "1/2"], help="of 1024x2048")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--images", nargs="+", type=int, default=[4, 3, 2], help="images per factor")
    args = parser.parse_args(argv)
    if not os.access(args.runner, os.X_OK):
        print(f"error: C++ runner {args.runner!r} not found: build it (docs/export.md, 'C++ runner')",
              file=sys.stderr)  # fmt: skip
        return 2
    factors = [Fraction(f) for f in args.factors]
    counts = (args.images + args.images[-1:] * len(factors))[: len(factors)]
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, OpenCV {cv2.__version__} (Python),"
          f" {os.cpu_count()} CPUs visible, shared with other jobs")  # fmt: skip
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        images = make_images(workdir, max(counts))
        for name in args.models:
            rows += bench_model(name, factors, args.threads, counts, images, args.runner, workdir)
    table = []
    for r in rows:
        n = r["n"]
        table.append([
            r["model"], f"{r['factor']} ({r['size'][0]}x{r['size'][1]})", r["threads"], n,
            *(f"{n / r[k][0]:.2f}" for k in ("eager", "python", "cpp")),
            *(f"{r[k][1] / n:.2f}" for k in ("eager", "python", "cpp")),
            f"{r['python'][0] / r['cpp'][0]:.2f}x", f"{r['python'][1] / r['cpp'][1]:.2f}x",
            f"{r['differ']} / {r['pixels']}",
        ])  # fmt: skip
    headers = ["model", "factor (input)", "threads", "images", "eager img/s", "python img/s", "C++ img/s",
               "eager CPU s/img", "python CPU s/img", "C++ CPU s/img", "C++/python img/s",
               "python/C++ CPU", "labels C++ != python"]  # fmt: skip
    print()
    print(tabulate(table, headers=headers, tablefmt="github"))
    slower = [f"{r['model']} {r['factor']} {r['threads']}t" for r in rows if r["cpp"][0] > r["python"][0]]
    verdict = "yes" if not slower else "no (" + ", ".join(slower) + ")"
    print(f"\nC++ at least as fast as infer_onnx.py on every row: {verdict};"
          f" total {time.perf_counter() - start:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
