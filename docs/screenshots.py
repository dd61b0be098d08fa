"""Screenshots of what dlx shows in TensorBoard (``make screenshots``).

1. Train a small runs folder: one short run of each family (CNN on
   Fashion-MNIST, a 1-epoch CNN, a ViT, Transformer on the reverse task, GAN
   on the 2-D ring, graph) and a small pooling sweep (2 points × 3 seeds),
   whose validation accuracy ``dlx runs plot`` draws as seed bands.
2. Start ``dlx tensorboard`` on it.
3. Drive headless Chromium over the DevTools protocol (through a pipe, with
   the standard library only) to Scalars, Custom Scalars (train and val loss
   on one chart), Images (the ViT's attention, the seed bands),
   Distributions, HParams (table, parallel coordinates and scatter matrix of
   the mixed folder) and the Projector; save one PNG per view in ``--out``,
   and optimised copies of the README's and docs' views in ``--docs``.

Chromium comes from Debian's ``chromium`` package::

    sudo apt-get install chromium        # Debian, Ubuntu: chromium-browser

Usage::

    python docs/screenshots.py                      # everything: about 5 minutes on 2 CPU cores
    python docs/screenshots.py --reuse              # keep the runs folder made last time
    python docs/screenshots.py --out /tmp/shots --no-docs
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("Chromium is needed for the screenshots and was not found on PATH.\n"
                "  Debian:  sudo apt-get update && sudo apt-get install -y chromium\n"
                "  Ubuntu:  sudo apt-get install -y chromium-browser\n"
                "or name a Chrome/Chromium binary with --chromium PATH.")
# The README's views are taken 1:1 in a window just wide enough for two image cards, so that the
# pictures' text stays as large as TensorBoard draws it.
DOCS_WINDOW = (1180, 860)
MARK = ".made-by-screenshots"  # the runs folders this script may delete and remake

def fragment(dashboard: str, runs: str = "", tags: str = "") -> str:
    """TensorBoard's URL fragment for a dashboard with a run regex and a tag regex."""
    from urllib.parse import quote

    return f"#{dashboard}" + (f"&regexInput={quote(runs, safe='')}" if runs else "") + (
        f"&tagFilter={quote(tags, safe='')}" if tags else "")


@dataclass(frozen=True)
class View:
    """One screenshot: where to go, what to wait for, what to click, how big a window."""

    name: str
    fragment: str
    wait_for: str  # text that shows the dashboard has loaded its data
    click: str | None = None  # text of a tab to click first
    script: str = ""  # a JavaScript expression to run then (after DEEP's helpers) until it is true
    settle: float = 4  # seconds for charts and images to draw after that
    window: tuple[int, int] = (1400, 950)  # CSS pixels
    scope: str = "all"  # TensorBoard on the whole runs folder, or on the sweep alone ("sweep")


VIEWS = [
    View("scalars", fragment("scalars", "^cnn/", "^(train/loss|val/accuracy|val/loss|opt/lr)$"), "train/loss"),
    View("images-cnn", fragment("images", "^cnn/", "^(eval|filters|feature_maps)/"), "eval/confusion_matrix",
         window=DOCS_WINDOW),
    View("images-transformer", fragment("images", "^transformer/", "^attention/cross/"), "attention/cross",
         window=DOCS_WINDOW),
    View("images-gan", fragment("images", "^gan/", "^(samples|eval)/"), "samples/scatter"),
    View("images-gan-noise", fragment("images", "^gan/"), "config/noise", window=DOCS_WINDOW),
    View("images-graph", fragment("images", "^graph/", "^graph/"), "graph/attention",
         window=DOCS_WINDOW),
    View("distributions", fragment("distributions", "^cnn/", "^gradients/"), "gradients/"),
    # Train and val loss on one chart (Custom Scalars), a 1-epoch run validated 10 times or more.
    View("loss-one-chart", fragment("custom_scalars", "^cnn/one-epoch"), "train and validation loss",
         settle=6, window=(1180, 760)),
    View("images-vit", fragment("images", "^cnn/vit", "^(attention|filters)/"), "attention/rollout",
         window=DOCS_WINDOW),
    View("seed-bands", fragment("images", "plots", "^seed_bands/"), "seed_bands/", window=DOCS_WINDOW),
    # The whole mixed folder: every run has the ticked metrics (hparam/score first), so every run is drawn.
    View("hparams-parallel-mixed", fragment("hparams"), "score", "Parallel coordinates view", settle=6,
         window=(1400, 900)),
    View("hparams-scatter-mixed", fragment("hparams"), "score", "Scatter plot matrix view", settle=6,
         window=(1400, 1100)),
    View("hparams-table", fragment("hparams"), "sweep_point", window=(1800, 950)),
    # A sweep's own folder, as `dlx tensorboard runs/sweeps/<sweep>` opens it: every line one sweep point.
    View("hparams-parallel", fragment("hparams"), "sweep_point", "Parallel coordinates view", settle=5,
         window=(1400, 820), scope="sweep"),
    View("projector", fragment("projector"), "Points:", settle=12, window=DOCS_WINDOW, script=(
        "(() => { const panel = deepAll(document, []).find(e => e.tagName === 'VZ-PROJECTOR-DATA-PANEL');"
        "  if (!panel || !(panel.colorOptions || []).some(option => option.name === 'class')) return false;"
        "  panel.selectedColorOptionName = 'class'; return true; })()")),  # colour the points by class
]
# The four the README shows, as docs/tensorboard-<name>.png.
DOCS = ("images-cnn", "images-transformer", "hparams-parallel", "projector")
# Views the README and docs/concepts.md show under their own names.
NAMED_DOCS = {"images-gan-noise": "gan-noise-histogram.png", "images-graph": "graph-attention.png",
              "loss-one-chart": "tensorboard-loss-one-chart.png", "images-vit": "tensorboard-vit-attention.png",
              "seed-bands": "tensorboard-seed-bands.png",
              "hparams-parallel-mixed": "tensorboard-hparams-parallel-mixed.png",
              "hparams-scatter-mixed": "tensorboard-hparams-scatter-mixed.png"}


def dlx(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlx", *args]


def make_runs(runs: Path) -> None:
    """A small runs folder with every family and a sweep (about 3 minutes on 2 CPU cores)."""
    common = ["--runs-dir", str(runs), "--no-progress"]
    small = ["--set", "data.val_size=1000", "--set", "data.limit_test=1000", "--set", "embedding_samples=0"]
    commands = [
        dlx("train-cnn", "--epochs", "3", "--limit-train", "4000", "--set", "data.limit_test=2000", *common),
        dlx("train-cnn", "--epochs", "1", "--limit-train", "4000", "--name", "one-epoch", *small, *common),
        dlx("train-cnn", "--model", "vit", "--epochs", "2", "--limit-train", "6000", *small, *common),
        dlx("train-transformer", "--epochs", "1", *common),
        dlx("train-gan", "--epochs", "1", "--steps-per-epoch", "500", "--noise", "uniform", "--noise-scale", "3",
            *common),
        dlx("train-graph", *common),
        dlx("sweep", str(ROOT / "experiments/cnn/pooling.yaml"), "--parallel", "2", "--runs-dir", str(runs),
            "--set", "optim.epochs=1", "--set", "data.limit_train=2000", "--set", "data.limit_test=1000",
            "--set", "data.val_size=1000"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for command in commands:
        print("+", " ".join(command[2:]), flush=True)
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
            raise SystemExit(f"that command failed (exit code {done.returncode})")
    # The pooling sweep's validation accuracy, seeds as bands: a PNG and an image in <sweep>/plots.
    plot = dlx("runs", "plot", str(newest(runs / "sweeps")), "--metric", "val/accuracy", "--runs-dir", str(runs))
    print("+", " ".join(plot[2:]), flush=True)
    subprocess.run(plot, env=env, cwd=ROOT, check=True, capture_output=True)


def newest(folder: Path) -> Path:
    """The newest sub-folder of ``folder`` (the sweep the runs folder holds), either folder-name layout."""
    from dlx.rundir import newest_first

    found = newest_first(path for path in folder.iterdir() if path.is_dir())
    if not found:
        raise SystemExit(f"no sweep in {folder}")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tensorboard(runs: Path):
    """``dlx tensorboard`` on ``runs``; yields its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(dlx("tensorboard", str(runs), "--port", str(port)), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/data/runs", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"TensorBoard did not start on {url} (exit code {process.poll()})") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


class Browser:
    """Headless Chromium driven over the DevTools protocol through a pipe (fds 3 and 4)."""

    def __init__(self, binary: str, profile: str):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        high = [os.dup(fd) for fd in (to_browser_read, from_browser_write)]  # out of the way of 3 and 4
        for fd in (to_browser_read, from_browser_write):
            os.close(fd)

        def wire_pipes() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                 "--remote-debugging-pipe", f"--user-data-dir={profile}", "--force-device-scale-factor=1",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # WebGL for the projector
                 "--no-first-run", "--disable-extensions", "about:blank"]
        self.process = subprocess.Popen([binary, *flags], preexec_fn=wire_pipes, close_fds=False,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in high:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60) -> dict:
        """Send one command and wait for its reply (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise TimeoutError("Chromium did not answer")
            ready, _, _ = select.select([self._from_browser], [], [], 1.0)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, session: str, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", timeout=5)
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        if self.process.poll() is None:
            self.process.kill()


# JavaScript that looks through shadow roots (TensorBoard's dashboards are Polymer elements) and
# same-origin frames (the projector is one).
DEEP = """
function deepAll(root, out) {
  for (const element of root.querySelectorAll('*')) {
    out.push(element);
    if (element.shadowRoot) deepAll(element.shadowRoot, out);
    if (element.tagName === 'IFRAME' && element.contentDocument) deepAll(element.contentDocument, out);
  }
  return out;
}
"""


def has_text(text: str) -> str:
    """JS: true once some element's own text (not its children's) contains ``text``."""
    return DEEP + ("deepAll(document, []).some(e => Array.from(e.childNodes).some("
                   f"n => n.nodeType === 3 && n.textContent.includes({json.dumps(text)})))")


def click_text(text: str) -> str:
    """JS: click the innermost element whose text is ``text`` (case-insensitive); true when found."""
    return DEEP + f"""(() => {{
  const wanted = {json.dumps(text.lower())};
  const hits = deepAll(document, []).filter(e => (e.textContent || '').trim().toLowerCase() === wanted);
  if (!hits.length) return false;
  hits[hits.length - 1].click();
  return true;
}})()"""


def shoot(browser: Browser, url: str, out: Path, view: View) -> Path:
    """Open one view in a fresh tab, wait for it, click if asked, and save the screenshot."""
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    width, height = view.window
    browser.call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
    browser.call("Page.enable", {}, session)
    browser.call("Page.navigate", {"url": f"{url}/{view.fragment}"}, session)
    deadline = time.time() + 90
    while not browser.evaluate(session, has_text(view.wait_for)):
        if time.time() > deadline:
            print(f"  {view.name}: {view.wait_for!r} never appeared; taking the picture anyway", file=sys.stderr)
            break
        time.sleep(1)
    if view.click:
        time.sleep(2)
        if not browser.evaluate(session, click_text(view.click)):
            print(f"  {view.name}: found nothing called {view.click!r} to click", file=sys.stderr)
    if view.script:  # the page builds its panels after its data arrives: try for a while
        tries = 30
        while not browser.evaluate(session, DEEP + view.script) and tries:
            tries -= 1
            time.sleep(1)
        if not tries:
            print(f"  {view.name}: its script found nothing to change", file=sys.stderr)
    time.sleep(view.settle)  # charts and images load after the tags do
    data = browser.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
    browser.call("Target.closeTarget", {"targetId": target})
    path = out / f"{view.name}.png"
    path.write_bytes(base64.b64decode(data))
    print(f"  {path}", flush=True)
    return path


def optimise(source: Path, target: Path, width: int = 1400) -> None:
    """A smaller copy for the README: at most ``width`` pixels wide, in a 256-colour palette."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        target, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "screenshots", help="folder for the PNGs")
    parser.add_argument("--runs", type=Path, default=None, help="runs folder (default: OUT/runs)")
    parser.add_argument("--reuse", action="store_true", help="use the runs folder as it is, if it has runs")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the README's copies go")
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ alone")
    parser.add_argument("--chromium", default=None, help="Chromium/Chrome binary (default: found on PATH)")
    args = parser.parse_args(argv)
    binary = args.chromium or next((found for name in CHROMIUMS if (found := shutil.which(name))), None)
    if binary is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    runs = args.runs or args.out / "runs"
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.reuse and any(runs.glob("**/events.out.tfevents.*"))):
        if runs.exists() and any(runs.iterdir()):
            if not (runs / MARK).is_file():  # never delete a folder this script did not make
                print(f"{runs} is not empty: pass --reuse to photograph it, or name an empty --runs", file=sys.stderr)
                return 2
            shutil.rmtree(runs)
        runs.mkdir(parents=True)
        (runs / MARK).write_text("made by docs/screenshots.py; deleted and remade by its next run\n")
        make_runs(runs)
    shots = {}
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(binary, profile)
        try:
            browser.call("Browser.getVersion", timeout=60)
            for scope in ("all", "sweep"):  # one TensorBoard per folder the views look at
                logdir = runs if scope == "all" else newest(runs / "sweeps")
                with tensorboard(logdir) as url:
                    print(f"TensorBoard on {logdir} at {url}; screenshots to {args.out}", flush=True)
                    for view in (view for view in VIEWS if view.scope == scope):
                        shots[view.name] = shoot(browser, url, args.out, view)
        finally:
            browser.close()
    if not args.no_docs:
        args.docs.mkdir(parents=True, exist_ok=True)
        for name in DOCS:
            optimise(shots[name], args.docs / f"tensorboard-{name}.png")
            print(f"  {args.docs / f'tensorboard-{name}.png'}")
        for name, file_name in NAMED_DOCS.items():
            optimise(shots[name], args.docs / file_name)
            print(f"  {args.docs / file_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
