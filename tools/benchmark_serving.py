#!/usr/bin/env python
"""Serving throughput from full-resolution images: PyTorch eager vs infer_onnx.py vs the C++ runner,
or, with --server, the model server (export/serve.py) under load.

    python tools/benchmark_serving.py --runner build/cpp/softlabelseg_infer          # full grid
    python tools/benchmark_serving.py --runner build/cpp/softlabelseg_infer --factors 1/8 1/4 --threads 1
    python tools/benchmark_serving.py --server model.onnx [--concurrency 1 4 16] [--requests 200]

Server mode starts ``export/serve.py`` on 127.0.0.1 (a free port), sends ToyCity val images as PNG
bytes with tritonclient (HTTP, one client per thread, closed loop: each of C threads sends its next
request when the last one is answered) and prints, per concurrency C, requests/s, p50/p95/p99
latency, and errors (any answer but 200); then one burst of 3 x --max-queue simultaneous requests
(answered 200 or 503, never dropped), the server's peak RSS (VmHWM) and its exit code after SIGTERM.
Bounded: --requests per level and --time-limit-s in all, loopback only.

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
import signal
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
from softlabelseg_export.folder_runner import list_images, segment_files
from softlabelseg_export.random_models import paper_model
from softlabelseg_export.recipe import recipe_metadata
from softlabelseg_export.runtime import (
    OnnxSegmenter,
    colorize,
    input_size_for,
    overlay,
    read_image,
    resize_image,
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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_memory(pid: int) -> dict:
    """VmRSS and VmHWM (peak) of a process, in MiB, from /proc."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = (line.split(":", 1) for line in lines)
    return {k: int(v.split()[0]) / 1024 for k, v in fields if k in ("VmRSS", "VmHWM")}


def start_server(model: str, args, log: Path):
    """``export/serve.py`` in a subprocess, returned once its model is ready: (process, host:port)."""
    import httpx

    port = free_port()
    cmd = [sys.executable, str(REPO / "export/serve.py"), "--model", model, "--name", "bench",
           "--port", str(port), "--grpc-port", "0", "--workers", str(args.workers),
           "--max-queue", str(args.max_queue), "--threads", str(args.server_threads)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/models/bench/ready", timeout=1).status_code == 200:
                return proc, f"127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server did not become ready:\n{log.read_text()[-2000:]}")


def load(url: str, payloads: list[bytes], concurrency: int, requests: int, deadline: float) -> dict:
    """``requests`` inferences from ``concurrency`` threads (closed loop); latencies (s) and error codes."""
    import threading

    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    latencies, errors, lock = [], [], threading.Lock()
    counter = iter(range(requests))

    def worker():
        client = triton.InferenceServerClient(url, network_timeout=120, connection_timeout=120)
        for i in counter:
            if time.monotonic() > deadline:
                return
            tensor = triton.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([payloads[i % len(payloads)]], dtype=np.object_))
            start = time.perf_counter()
            try:
                client.infer("bench", [tensor])
                ok = None
            except InferenceServerException as e:
                ok = str(e.status() or "error")
            except Exception as e:  # connection failures count as errors, they never stop the run
                ok = type(e).__name__
            with lock:
                (errors.append(ok) if ok else latencies.append(time.perf_counter() - start))

    wall = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return dict(latencies=latencies, errors=errors, wall=time.perf_counter() - wall)


def differing_from_runner(url: str, model: str, files: list[Path], workdir: Path) -> tuple[int, int]:
    """(images whose labels from the server differ from infer_onnx.py's, differing pixels): each image
    sent once as PNG bytes with tritonclient, infer_onnx.py run on the same files."""
    import tritonclient.http as triton
    from softlabelseg_export import infer_onnx

    folder = workdir / "runner_in"
    folder.mkdir()
    for i, f in enumerate(files):
        os.symlink(f, folder / f"{i:04d}{f.suffix}")
    if (
        infer_onnx.main(["--model", model, "--input", str(folder), "--output", str(workdir / "runner_out")])
        != 0
    ):
        raise RuntimeError("infer_onnx.py failed on the benchmark images")
    client = triton.InferenceServerClient(url, network_timeout=120)
    images = pixels = 0
    for f in sorted(folder.iterdir()):
        tensor = triton.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([f.read_bytes()], dtype=np.object_))
        served = client.infer("bench", [tensor]).as_numpy("labels")
        ref = cv2.imread(str(workdir / "runner_out" / f"{f.stem}_labels.png"), cv2.IMREAD_UNCHANGED)
        bad = int((served != ref).sum()) if served.shape == ref.shape else ref.size
        images, pixels = images + (bad > 0), pixels + bad
    return images, pixels


def bench_server(args) -> int:
    """The --server mode (see the module docstring)."""
    from collections import Counter

    start = time.perf_counter()
    deadline = time.monotonic() + args.time_limit_s
    with tempfile.TemporaryDirectory() as tmp:
        if args.images_from:
            files = list_images(args.images_from)
        else:
            from softlabelseg.data import ToyCityParams
            from softlabelseg.data.datasets import load_toycity_semantic

            params = ToyCityParams(num_train=1, num_val=8)
            files = [
                Path(r["file_name"]) for r in load_toycity_semantic(Path(tmp) / "toycity", "val", params)
            ]
        payloads = [f.read_bytes() for f in files]
        shape = cv2.imread(str(files[0])).shape
        proc, url = start_server(args.server, args, Path(tmp) / "server.log")
        try:
            idle = server_memory(proc.pid)["VmRSS"]
            differ = differing_from_runner(url, args.server, files, Path(tmp))
            print(f"  labels differing from infer_onnx.py's: {differ[0]} of {len(files)} images,"
                  f" {differ[1]} pixels", flush=True)  # fmt: skip
            rows = []
            for c in args.concurrency:
                r = load(url, payloads, c, args.requests, deadline)
                ms = np.array(r["latencies"]) * 1000
                p50, p95, p99 = np.percentile(ms, [50, 95, 99]) if len(ms) else (float("nan"),) * 3
                rows.append([c, len(ms) + len(r["errors"]), f"{len(ms) / r['wall']:.1f}", f"{p50:.0f}",
                             f"{p95:.0f}", f"{p99:.0f}", len(r["errors"])])  # fmt: skip
                errors = dict(Counter(r["errors"]))
                print(f"  concurrency {c}: {rows[-1][2]} req/s, errors {errors}", flush=True)
            burst = load(url, payloads, 3 * args.max_queue, 3 * args.max_queue, deadline)
            memory = server_memory(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(120)
    print(f"\nserver: {args.server} ({len(files)} images of {shape[1]}x{shape[0]} sent as PNG),"
          f" --workers {args.workers}, --max-queue {args.max_queue}, --threads {args.server_threads};"
          f" {os.cpu_count()} CPUs visible, shared with other jobs\n")  # fmt: skip
    print(tabulate(rows, headers=["concurrency", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
                   tablefmt="github"))  # fmt: skip
    answers = Counter(["200"] * len(burst["latencies"]) + burst["errors"])
    print(f"\nburst of {3 * args.max_queue} at once: {dict(answers)}; server RSS idle {idle:.0f} MiB, peak"
          f" (VmHWM) {memory['VmHWM']:.0f} MiB; exit code after SIGTERM {code};"
          f" total {time.perf_counter() - start:.0f} s")  # fmt: skip
    print(f"labels differing from infer_onnx.py's: {differ[0]} of {len(files)} images, {differ[1]} pixels")
    return 0 if code == 0 and differ == (0, 0) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=None, help="an exported .onnx: load-test the model server")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16], help="server mode")
    parser.add_argument("--requests", type=int, default=200, help="server mode: requests per concurrency")
    parser.add_argument("--workers", type=int, default=2, help="server mode: the server's --workers")
    parser.add_argument("--max-queue", type=int, default=32, help="server mode: the server's --max-queue")
    parser.add_argument("--server-threads", type=int, default=1, help="server mode: the server's --threads")
    parser.add_argument(
        "--images-from",
        default=None,
        help="server mode: a folder of images to send (default: 8 generated ToyCity val images)",
    )
    parser.add_argument("--time-limit-s", type=float, default=600, help="server mode: bound on the whole run")
    parser.add_argument("--runner", default=str(REPO / "build/cpp/softlabelseg_infer"), help="the C++ runner")
    parser.add_argument("--models", nargs="+", default=["hrnet_w48", "deeplabv3plus_r101"])
    parser.add_argument("--factors", nargs="+", default=["1/8", "1/4", "1/2"], help="of 1024x2048")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--images", nargs="+", type=int, default=[4, 3, 2], help="images per factor")
    args = parser.parse_args(argv)
    if args.server:
        if not os.path.isfile(args.server):
            print(f"error: --server {args.server!r} does not exist: export a model first", file=sys.stderr)
            return 2
        return bench_server(args)
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
