#!/usr/bin/env python
"""Build the manual as a site and read every page in headless Chromium, as a person would see it.

    python tools/check_docs_site.py                  # build (strict), check every page, exit 1 on a fault
    python tools/check_docs_site.py --screens shots/ # also save desktop and phone screenshots
    python tools/check_docs_site.py --site-dir site --no-build

At a desktop (1280 px) and a phone (390 px) width, each page fails on: an image that does not load; a
visible Markdown artefact (a paragraph line starting with "- ", "* " or "1. ", an ordered list that
restarts its numbering after a code block in the same section, a first line MkDocs read as metadata and
dropped); the page body wider than the window; a code block wider than its box. Wide tables may scroll
inside their own box. Chromium is Debian's ``chromium`` (``apt-get install chromium``; ``--chromium`` or
``$CHROMIUM`` for another binary); it is driven over the DevTools protocol with no other dependency, and
reaches nothing but the site, which is served on 127.0.0.1. Exit 2 when Chromium or the build is missing.
"""

import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlparse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTHS = {"desktop": 1280, "phone": 390}
SCREEN_PAGES = ("", "getting_started/", "evidence/", "evidence/grids/camvid_tiny_wide/", "howto/add_a_model/")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")  # the site only, offline

# Run in the page; returns a list of faults, each one line.
PAGE_CHECK = r"""
(() => {
  const faults = [];
  const root = document.querySelector("article.md-content__inner") || document.body;
  const where = el => (el.closest("[id]") ? "#" + el.closest("[id]").id : "") + " '" +
                      el.textContent.trim().slice(0, 60).replace(/\s+/g, " ") + "'";
  for (const img of root.querySelectorAll("img")) {
    if (!img.complete || img.naturalWidth === 0) faults.push("broken image " + img.getAttribute("src"));
  }
  for (const p of root.querySelectorAll("p")) {
    const lines = p.textContent.split("\n");  // the Markdown source's lines: innerText joins them
    if (lines.some(l => /^\s*([-*+]|\d+\.)\s/.test(l)))
      faults.push("list marker printed inside a paragraph:" + where(p));
  }
  for (const ol of root.querySelectorAll("ol:not([start])")) {
    for (let el = ol.previousElementSibling; el && !/^H[1-6]$/.test(el.tagName);
         el = el.previousElementSibling) {
      if (el.tagName === "OL") { faults.push("ordered list restarts at 1:" + where(ol)); break; }
    }
  }
  for (const pre of root.querySelectorAll("pre")) {
    // the <code> inside may be inline (no box of its own): measure whichever has one
    const boxes = [pre, pre.querySelector("code")].filter(el => el && el.clientWidth > 0);
    if (boxes.some(el => el.scrollWidth > el.clientWidth + 1))
      faults.push("code block wider than its box:" + where(pre));
  }
  const width = document.documentElement.clientWidth;
  const body = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
  if (body > width + 1) {
    let widest = null;
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.right > width + 1 && !(widest && widest.contains(el))) { widest = el; break; }
    }
    faults.push(`page body ${body} px wide in a ${width} px window` + (widest ? ", first at <" +
                widest.tagName.toLowerCase() + ">" + where(widest) : ""));
  }
  return faults;
})()
"""

# Resolves when every image has loaded or failed (a lazy image is asked to load first).
IMAGES_SETTLED = r"""
Promise.all([...document.images].map(img => { img.loading = "eager"; return img.complete ? 0 :
  new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done);
                        setTimeout(done, 5000); }); })).then(() => document.fonts.ready).then(() => true)
"""


class WebSocket:
    """The client side of RFC 6455, text frames only: enough for Chromium's DevTools endpoint on localhost."""

    def __init__(self, url: str, timeout: float = 60.0):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the websocket: {head.splitlines()[0]!r}")
        self.buffer = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                         bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                         bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))  # small messages: the page scripts
        self.sock.sendall(head + mask + masked)

    def send(self, text: str) -> None:
        self._frame(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            n = struct.unpack(">H", self._read(2))[0] if n == 126 else struct.unpack(">Q", self._read(8))[0] \
                if n == 127 else n
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._frame(0xA, payload)  # pong
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            message += payload
            if b0 & 0x80:
                return message.decode()


class Browser:
    """Headless Chromium with a fresh profile, one tab, driven over the DevTools protocol."""

    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="docs-check-chromium-")
        self.proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or len(open(port_file).read().split()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{binary} did not start (exit {self.proc.poll()})")
            time.sleep(0.1)
        port, path = open(port_file).read().split()[:2]
        self.ws = WebSocket(f"ws://127.0.0.1:{port}{path}")
        self.next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply["result"]

    def page(self, method: str, **params):
        return self.call(method, self.session, **params)

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def open(self, url: str, width: int) -> None:
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                  mobile=width < 600)
        self.page("Page.navigate", url=url)
        deadline = time.monotonic() + 30
        while self.evaluate("document.readyState + ' ' + location.href") != f"complete {url}":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not load in 30 s")
            time.sleep(0.05)
        self.evaluate(IMAGES_SETTLED, await_promise=True)

    def screenshot(self, path: str, width: int) -> None:
        height = min(int(self.evaluate("document.documentElement.scrollHeight")), 12000)
        shot = self.page("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def metadata_faults(docs_dir: str) -> list[str]:
    """Pages whose leading ``key: value`` line(s) MkDocs takes for metadata, so the site never shows them."""
    from mkdocs.utils.meta import get_data

    faults = []
    for folder, _, names in os.walk(docs_dir):
        for name in sorted(names):
            if name.endswith(".md"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    meta = get_data(f.read())[1]
                if meta:
                    faults.append(f"{os.path.relpath(path, REPO)}: first line(s) read as metadata and "
                                  f"dropped ({', '.join(meta)}); start the page with a heading")
    return sorted(faults)


def serve(site: str) -> http.server.ThreadingHTTPServer:
    """The built site on 127.0.0.1 (a free port), in a daemon thread."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def site_pages(site: str) -> list[str]:
    """Every built page as a path under the site (``""`` for the home page, ``training/``, ...)."""
    pages = []
    for folder, _, names in os.walk(site):
        if "index.html" in names:
            rel = os.path.relpath(folder, site)
            pages.append("" if rel == "." else rel.replace(os.sep, "/") + "/")
    return sorted(pages)


def find_chromium(given: str | None) -> str | None:
    for name in ([given] if given else []) + [os.environ.get("CHROMIUM"), "chromium", "chromium-browser"]:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--site-dir", help="the built site (default: build into a temporary folder)")
    ap.add_argument("--no-build", action="store_true", help="check --site-dir as it is")
    ap.add_argument("--screens", help="folder for desktop and phone screenshots of the main pages")
    ap.add_argument("--chromium", help="the browser binary (default: $CHROMIUM, chromium, chromium-browser)")
    args = ap.parse_args(argv)
    if args.no_build and not args.site_dir:
        ap.error("--no-build needs --site-dir")
    binary = find_chromium(args.chromium)
    if binary is None:
        print("error: no Chromium found; install Debian's package (apt-get install chromium) or pass "
              "--chromium <binary>", file=sys.stderr)
        return 2
    start = time.monotonic()
    site = args.site_dir or tempfile.mkdtemp(prefix="docs-check-site-")
    if not args.no_build:
        env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
        built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site],
                               cwd=REPO, env=env, capture_output=True, text=True)
        if built.returncode:
            print(built.stderr, file=sys.stderr)
            print("error: mkdocs build --strict failed (above); fix the pages, then run this again",
                  file=sys.stderr)
            return 2
    elif not os.path.isfile(os.path.join(site, "index.html")):
        print(f"error: {site} holds no built site (index.html); build it or leave out --no-build",
              file=sys.stderr)
        return 2
    build_s = time.monotonic() - start
    files = sum(len(names) for _, _, names in os.walk(site))
    faults = metadata_faults(os.path.join(REPO, "docs"))
    pages = [p for p in site_pages(site) if not p.startswith("search/")]
    if args.screens:
        os.makedirs(args.screens, exist_ok=True)
    server = serve(site)
    browser = Browser(binary)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        for page in pages:
            for label, width in WIDTHS.items():
                browser.open(base + page, width)
                faults += [f"{page or '/'} ({label}, {width} px): {f}" for f in browser.evaluate(PAGE_CHECK)]
                if args.screens and page in SCREEN_PAGES:
                    name = (page.strip("/").replace("/", "_") or "home") + f"_{label}.png"
                    browser.screenshot(os.path.join(args.screens, name), width)
    finally:
        browser.close()
        server.shutdown()
        if not args.site_dir:
            shutil.rmtree(site, ignore_errors=True)
    for fault in faults:
        print(fault)
    print(f"{len(pages)} pages x {len(WIDTHS)} widths checked in {time.monotonic() - start:.1f} s "
          f"(build {build_s:.1f} s, {files} files in the site): {len(faults)} fault(s)")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
