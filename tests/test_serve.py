"""The model server (export/serve.py, KServe, Open Inference Protocol v2) queried by clients the project
did not write: tritonclient (HTTP and gRPC) and httpx (plain JSON, as curl sends it).

Protects: labels equal to infer_onnx.py's pixel for pixel on ToyCity val images, for an encoded image
and for raw pixels; the scores output equal to the graph's; readiness and metadata with the classes and
colours of the export; every bad request answered 4xx with a message naming the problem while the
server goes on; a burst beyond --max-queue answered 503 with a reason; SIGTERM finishing the requests
in flight and exiting 0; the Triton repository's config.pbtxt parsed with Triton's own schema.

The server runs in a subprocess on 127.0.0.1 (free ports), as a user starts it. This process never
imports kserve: its gRPC protos and tritonclient's share names in protobuf's default pool.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import yaml

httpx = pytest.importorskip("httpx")
tritonhttp = pytest.importorskip("tritonclient.http")
tritongrpc = pytest.importorskip("tritonclient.grpc")
if importlib.util.find_spec("kserve") is None:  # found, not imported (see above)
    pytest.skip("the server needs the [serve] extra", allow_module_level=True)

from google.protobuf import text_format  # noqa: E402
from softlabelseg_export import infer_onnx  # noqa: E402
from softlabelseg_export.metadata import read_metadata  # noqa: E402
from softlabelseg_export.pipeline import export_from_recipe  # noqa: E402
from softlabelseg_export.runtime import OnnxSegmenter  # noqa: E402
from softlabelseg_export.serving import triton  # noqa: E402
from softlabelseg_export.serving.server import build_parser  # noqa: E402
from tritonclient.grpc import model_config_pb2  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from tests.helpers.export import toycity_setup  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAME = "toycity"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python export/serve.py`` in a subprocess on free ports; ``stop()`` sends SIGTERM, returns rc."""

    def __init__(self, model: str, log: Path, *extra: str):
        self.port, self.grpc_port = free_port(), free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "export/serve.py", "--model", model, "--name", NAME, "--port", str(self.port),
               "--grpc-port", str(self.grpc_port), "--threads", "1", *extra]  # fmt: skip
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://{self.url}/v2/models/{NAME}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in 90 s:\n{log.read_text()[-3000:]}")

    def ready(self) -> bool:
        return httpx.get(f"http://{self.url}/v2/health/ready", timeout=5).json() == {"ready": True}

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The ToyCity recipe's tiny model exported, its val images, and infer_onnx.py's labels for them."""
    root = tmp_path_factory.mktemp("serve")
    setup = toycity_setup(root, REPO, num_val=4)
    onnx_path = str(root / "model.onnx")
    export_from_recipe(setup["config_file"], setup["checkpoint"], onnx_path)
    images = root / "images"
    images.mkdir()
    files = []
    for i, record in enumerate(setup["records"]):
        files.append(images / f"val{i}.png")
        files[-1].write_bytes(Path(record["file_name"]).read_bytes())
    # one more at another size than the recipe's (the server resizes like the runner for any size)
    cv2.imwrite(str(images / "odd.png"), cv2.resize(cv2.imread(str(files[0])), (301, 157)))
    files.append(images / "odd.png")
    assert infer_onnx.main(["--model", onnx_path, "--input", str(images), "--output", str(root / "out"),
                            "--threads", "1"]) == 0  # fmt: skip
    runner = {
        f.name: cv2.imread(str(root / "out" / f"{f.stem}_labels.png"), cv2.IMREAD_UNCHANGED) for f in files
    }
    return dict(onnx=onnx_path, files=files, runner=runner, root=root)


@pytest.fixture(scope="module")
def server(exported):
    srv = Server(exported["onnx"], exported["root"] / "server.log", "--workers", "1", "--max-queue", "2",
                 "--max-pixels", str(1024 * 2048), "--max-body-mb", "8")  # fmt: skip
    yield srv
    assert srv.stop() == 0


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_tritonclient_http_labels_equal_the_runner(exported, server):
    client = tritonhttp.InferenceServerClient(server.url)
    assert client.is_server_ready() and client.is_model_ready(NAME)
    for f in exported["files"]:
        encoded = tritonhttp.InferInput("image", [1], "BYTES")
        encoded.set_data_from_numpy(np.array([f.read_bytes()], dtype=np.object_))
        raw = tritonhttp.InferInput("image_rgb", list(rgb(f).shape), "UINT8")
        raw.set_data_from_numpy(rgb(f))
        for tensor in (encoded, raw):
            result = client.infer(NAME, [tensor], outputs=[tritonhttp.InferRequestedOutput("labels")])
            labels = result.as_numpy("labels")
            assert labels.dtype == np.uint8 and labels.shape == exported["runner"][f.name].shape
            assert np.array_equal(labels, exported["runner"][f.name]), f.name
            response = result.get_response()
            assert response["model_name"] == NAME and response["model_version"] == "1"


def test_tritonclient_grpc_labels_and_scores(exported, server):
    client = tritongrpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_server_ready() and client.is_model_ready(NAME)
    segmenter = OnnxSegmenter(exported["onnx"], threads=1)
    f = exported["files"][1]
    tensor = tritongrpc.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([f.read_bytes()], dtype=np.object_))
    outputs = [tritongrpc.InferRequestedOutput("labels"), tritongrpc.InferRequestedOutput("scores")]
    result = client.infer(NAME, [tensor], outputs=outputs)
    assert np.array_equal(result.as_numpy("labels"), exported["runner"][f.name])
    graph = segmenter.run(segmenter.prepare(rgb(f)))[0]
    assert np.array_equal(result.as_numpy("scores"), graph)  # at the model's resolution, as the graph gives
    with pytest.raises(InferenceServerException, match="not an image") as refused:
        bad = tritongrpc.InferInput("image", [1], "BYTES")
        bad.set_data_from_numpy(np.array([b"not an image at all"], dtype=np.object_))
        client.infer(NAME, [bad])
    assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="nomodel") as refused:
        client.infer("nomodel", [tensor])
    assert refused.value.status() == "StatusCode.NOT_FOUND"
    assert client.is_server_ready()


def test_json_readiness_metadata_and_base64_infer(exported, server):
    base = f"http://{server.url}/v2"
    assert httpx.get(f"{base}/health/live").status_code == 200
    assert httpx.get(f"{base}/models/{NAME}/ready").json()["ready"] is True
    meta = httpx.get(f"{base}/models/{NAME}").json()
    export = read_metadata(exported["onnx"])
    assert meta["name"] == NAME and meta["versions"] == ["1"]
    assert meta["parameters"]["class_names"] == export.class_names
    assert meta["parameters"]["class_colors"] == export.class_colors
    assert meta["parameters"]["resolution_factor"] == export.resolution_factor
    assert {t["name"]: t["datatype"] for t in meta["inputs"]} == {"image": "BYTES", "image_rgb": "UINT8"}
    assert [t["name"] for t in meta["outputs"]] == ["labels", "scores"]
    f = exported["files"][2]
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(f.read_bytes()).decode()],
                        "parameters": {"content_type": "base64"}}]}  # fmt: skip
    reply = httpx.post(f"{base}/models/{NAME}/infer", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    out = reply.json()["outputs"][0]
    labels = np.asarray(out["data"], np.uint8).reshape(out["shape"])
    assert out["name"] == "labels" and out["datatype"] == "UINT8"
    assert np.array_equal(labels, exported["runner"][f.name])


def _png_with_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height`` (header CRC fixed up)."""
    png = bytearray(cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes())
    ihdr = bytearray(png[12:29])  # b"IHDR" + 13 bytes of data
    ihdr[4:12] = struct.pack(">II", width, height)
    png[12:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(png)


def _encoded(data: bytes) -> dict:
    text = base64.b64encode(data).decode()
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [text],
                        "parameters": {"content_type": "base64"}}]}  # fmt: skip


def _bad_requests(png: bytes) -> list:
    """(what, path, json body or raw bytes, status, words the message must hold)."""
    infer = f"/v2/models/{NAME}/infer"
    tiny = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()
    huge = cv2.imencode(".png", np.zeros((1100, 2048, 3), np.uint8))[1].tobytes()
    return [
        ("bytes that are not an image", infer, _encoded(b"GIF? no, plain text" * 4), 400, "not an image"),
        ("truncated PNG", infer, _encoded(png[: len(png) // 2]), 400, "truncated or corrupt"),
        ("0x0 image", infer, _encoded(_png_with_size(0, 0)), 400, "is 0x0"),
        ("1x1 image", infer, _encoded(tiny), 400, "at least 8 pixels"),
        ("image above --max-pixels", infer, _encoded(huge), 413, "--max-pixels"),
        (
            "tensor of wrong dtype",
            infer,
            {"inputs": [{"name": "image_rgb", "datatype": "FP32", "shape": [8, 8, 3], "data": [0.5] * 192}]},
            400,
            "must be UINT8",
        ),  # fmt: skip
        (
            "tensor of wrong shape",
            infer,
            {"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [8, 8], "data": [0] * 64}]},
            400,
            "[H, W, 3]",
        ),  # fmt: skip
        (
            "data not matching its shape",
            infer,
            {"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": [8, 8, 3], "data": [0] * 5}]},
            400,
            "does not match",
        ),  # fmt: skip
        (
            "unknown input name",
            infer,
            {"inputs": [{"name": "picture", "datatype": "UINT8", "shape": [8, 8, 3], "data": [0] * 192}]},
            400,
            "exactly one input",
        ),  # fmt: skip
        (
            "unknown output name",
            infer,
            {**_encoded(png), "outputs": [{"name": "edges"}]},
            400,
            "unknown output",
        ),
        ("unknown model name", "/v2/models/nomodel/infer", _encoded(png), 404, "nomodel"),
        ("body above --max-body-mb", infer, b"x" * (9 << 20), 413, "--max-body-mb"),
    ]


def test_bad_requests_get_4xx_naming_the_problem_and_the_server_goes_on(exported, server, capsys):
    png = exported["files"][0].read_bytes()
    rows = []
    for what, path, body, status, words in _bad_requests(png):
        url = f"http://{server.url}{path}"
        if isinstance(body, bytes):
            reply = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
        else:
            reply = httpx.post(url, json=body, timeout=30)
        message = reply.json().get("error", "")
        up = server.ready()
        rows.append(f"| {what} | {reply.status_code} | {message} | {'yes' if up else 'NO'} |")
        assert reply.status_code == status, (what, reply.text)
        assert words in message, (what, message)
        assert up, what
    good = httpx.post(f"http://{server.url}/v2/models/{NAME}/infer", json=_encoded(png), timeout=60)
    assert good.status_code == 200
    with capsys.disabled():  # the table the docs show
        print(
            "\n| request | status | message | server still up |\n| --- | --- | --- | --- |\n"
            + "\n".join(rows)
        )


def test_burst_beyond_the_queue_gets_503_with_a_reason(exported, server):
    image = cv2.resize(rgb(exported["files"][0]), (1024, 512))  # a fraction of a second per request
    body = {"inputs": [{"name": "image_rgb", "datatype": "UINT8", "shape": list(image.shape),
                        "parameters": {"binary_data_size": image.nbytes}}]}  # fmt: skip
    header = json.dumps(body).encode()
    raw = header + image.tobytes()
    replies = []

    def send():
        headers = {
            "Inference-Header-Content-Length": str(len(header)),
            "content-type": "application/octet-stream",
        }
        replies.append(httpx.post(f"http://{server.url}/v2/models/{NAME}/infer", content=raw, headers=headers,
                                  timeout=120))  # fmt: skip

    threads = [threading.Thread(target=send) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    codes = sorted(r.status_code for r in replies)
    assert set(codes) <= {200, 503} and codes.count(503) >= 1 and codes.count(200) >= 2, codes
    busy = next(r for r in replies if r.status_code == 503)
    assert "server busy" in busy.json()["error"] and "--max-queue" in busy.json()["error"]
    assert busy.headers["retry-after"] == "1"
    assert server.ready()


def admitted(srv: Server) -> int:
    """The server's count of requests running or queued, from its Prometheus metrics."""
    for line in httpx.get(f"http://{srv.url}/metrics", timeout=5).text.splitlines():
        if line.startswith("softlabelseg_admitted_requests{"):
            return int(float(line.split()[-1]))
    return 0


def test_sigterm_finishes_requests_in_flight_and_exits_0(exported, tmp_path):
    srv = Server(exported["onnx"], tmp_path / "server.log", "--workers", "1", "--max-queue", "8")
    image = cv2.resize(rgb(exported["files"][0]), (2048, 1024))  # about a second each here
    results = []

    def send():  # a client per thread: tritonclient's own async calls progress only inside gevent
        tensor = tritonhttp.InferInput("image_rgb", list(image.shape), "UINT8")
        tensor.set_data_from_numpy(image)
        results.append(tritonhttp.InferenceServerClient(srv.url, network_timeout=120).infer(NAME, [tensor]))

    threads = [threading.Thread(target=send) for _ in range(3)]
    [t.start() for t in threads]
    deadline = time.monotonic() + 60
    while admitted(srv) < 2 and time.monotonic() < deadline:  # one runs, at least one waits
        time.sleep(0.01)
    assert admitted(srv) >= 2
    srv.proc.send_signal(signal.SIGTERM)
    [t.join(120) for t in threads]
    assert len(results) == 3
    assert srv.proc.wait(60) == 0
    expected = OnnxSegmenter(exported["onnx"], threads=1).predict(image)
    assert all(np.array_equal(r.as_numpy("labels"), expected) for r in results)
    with pytest.raises(httpx.TransportError):  # stopped: the port is closed
        httpx.get(f"http://{srv.url}/v2/health/ready", timeout=2)


def test_triton_repository_config_matches_the_graph(exported, tmp_path):
    folder = triton.write_repository(exported["onnx"], tmp_path / "repo", "segmenter")
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    graph = onnx.load(str(folder / "1" / "model.onnx")).graph
    assert config.name == "segmenter" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 0
    for ours, theirs in ((config.input, graph.input), (config.output, graph.output)):
        assert [t.name for t in ours] == [t.name for t in theirs]
        for tensor, value in zip(ours, theirs, strict=True):
            assert list(tensor.dims) == [d.dim_value or -1 for d in value.type.tensor_type.shape.dim]
    assert model_config_pb2.DataType.Name(config.input[0].data_type) == "TYPE_UINT8"
    assert model_config_pb2.DataType.Name(config.output[0].data_type) == "TYPE_FP32"
    meta = read_metadata(exported["onnx"])
    params = {k: json.loads(v.string_value) for k, v in config.parameters.items()}
    assert params["softlabelseg.class_names"] == meta.class_names
    assert params["softlabelseg.resolution_factor"] == meta.resolution_factor
    assert (folder / "1" / "model.onnx").read_bytes() == Path(exported["onnx"]).read_bytes()
    with pytest.raises(triton.RepositoryError, match="nothing is overwritten"):
        triton.write_repository(exported["onnx"], tmp_path / "repo", "segmenter")


def test_server_refuses_a_model_it_cannot_serve_and_a_port_in_use(exported, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf")
    serve = [sys.executable, "export/serve.py", "--grpc-port", "0", "--port"]
    run = dict(cwd=REPO, capture_output=True, text=True, timeout=120)
    done = subprocess.run([*serve, str(free_port()), "--model", str(bad)], **run)
    assert done.returncode == 2 and "error:" in done.stderr and "broken.onnx" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run([*serve, port, "--model", exported["onnx"]], **run)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port} (--port)" in done.stderr


def test_the_inferenceservice_in_the_docs_runs_softlabelseg_serve():
    page = (REPO / "docs/export.md").read_text()
    block = page.split("<!-- inferenceservice -->\n```yaml\n", 1)[1].split("```", 1)[0]
    service = yaml.safe_load(block)
    assert service["kind"] == "InferenceService"
    container = service["spec"]["predictor"]["containers"][0]
    assert container["command"] == ["softlabelseg-serve"]
    args = build_parser().parse_args(container["args"])  # exits on a flag the server does not have
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": f"/v2/models/{args.name}/ready", "port": args.port}
    assert container["ports"][0]["containerPort"] == args.port and args.host == "0.0.0.0"
    assert service["spec"]["predictor"]["terminationGracePeriodSeconds"] > args.grace_s
