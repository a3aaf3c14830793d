"""``samem serve --view``: the live browser view in a real headless Chromium (Playwright), its
access control, and the ``record`` control command it uses."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import zmq

from samem.errors import SamemError
from samem.stream.control import parse_command
from samem.stream.protocol import decode_pub

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CLI = [sys.executable, "-m", "samem.cli.main"]
ANY = "tcp://127.0.0.1:*"


def _video(frames=400, size=96, seed=0):
    """Three dark discs drifting on noise (uint8), and their first-frame centres (x, y) px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    centres = [(24.0, 30.0), (70.0, 40.0), (40.0, 72.0)]
    out = np.empty((frames, size, size), np.uint8)
    for t in range(frames):
        f = rng.normal(170, 10, (size, size))
        for k, (cx, cy) in enumerate(centres):
            dx = 3 * np.sin(0.05 * t + k)
            f[(xx - cx - dx) ** 2 + (yy - cy) ** 2 <= 30] = 60
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out, centres


def _ready(proc, timeout_s=180):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 1.0)
        if r:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("{"):
                return json.loads(line)
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.stderr.read()[-2000:]}")


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


#: CI (.ci/run) installs chromium and sets SAMEM_REQUIRE_BROWSER=1: there a missing browser fails
#: the browser tests instead of skipping them
_NO_BROWSER = not Path(CHROMIUM).exists() or shutil.which("chromium") is None
if _NO_BROWSER and os.environ.get("SAMEM_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"SAMEM_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
needs_chromium = pytest.mark.skipif(_NO_BROWSER, reason="Debian's chromium is missing (.ci/run installs it)")


@needs_chromium
def test_view_in_chromium_frames_contours_and_box_prompt(tmp_path):
    from playwright import sync_api as playwright

    config = tmp_path / "serve.yaml"
    config.write_text("autoprompt:\n  frames: 1\nstats:\n  every_frames: 5\n")
    proc = subprocess.Popen(
        CLI
        + ["serve", "--ingest", ANY, "--publish", ANY, "--control", ANY, "--model", "samem_tiny"]
        + ["--auto-prompt", "--config", str(config), "--view", "127.0.0.1:0"]
        + ["--record", str(tmp_path / "rec.h5")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    stop_sending = threading.Event()
    try:
        ep = _ready(proc)
        url = ep["view"]
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"frame")
        sub.connect(ep["publish"])
        video, _ = _video()
        from samem.stream.client import FrameSender

        def send():
            with FrameSender(ep["ingest"], context=ctx, send_timeout_s=30) as tx:
                tx.start(video.shape[1:], "uint8", pixel_size_nm=2.0, frame_interval_s=0.05, series="view")
                for i, frame in enumerate(video):
                    if stop_sending.is_set():
                        break
                    tx.send(frame, seq=i)
                    time.sleep(0.04)
                tx.end()

        with playwright.sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page(viewport={"width": 1200, "height": 800}, bypass_csp=True)
            page.goto(url)
            page.wait_for_function(
                "document.getElementById('conn').textContent === 'connected'", timeout=30000
            )
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            # frames arrive and the auto-prompted particles' contours are drawn
            page.wait_for_function(
                "window.samemView.framesDrawn >= 3 && window.samemView.contoursDrawn >= 1", timeout=90000
            )
            # the state message is periodic: it may trail the frames drawn (seen under load)
            page.wait_for_function(
                "window.samemView.lastState && window.samemView.lastState.status.series"
                " && window.samemView.lastState.status.frames_processed >= 1",
                timeout=30000,
            )
            state = page.evaluate("window.samemView.lastState")
            assert state["status"]["frames_processed"] >= 1
            assert state["recording_available"] and not state["status"]["recording_paused"]
            before = set(state["status"]["objects"])
            new_id = state["status"]["next_object_id"]
            assert new_id not in before
            # draw a box around an empty area of the frame: a new track on the results stream
            box = page.locator("#frame").bounding_box()
            fw = page.evaluate("window.samemView.lastFrame && document.getElementById('frame').width")
            k = box["width"] / fw  # CSS px per canvas px (canvas px = frame px here: 96 < 1024)
            page.mouse.move(box["x"] + 80 * k, box["y"] + 78 * k)
            page.mouse.down()
            page.mouse.move(box["x"] + 86 * k, box["y"] + 84 * k, steps=3)
            page.mouse.move(box["x"] + 92 * k, box["y"] + 92 * k, steps=3)
            page.mouse.up()
            page.wait_for_function("window.samemView.replies.some(r => r.cmd === 'prompt')", timeout=30000)
            reply = page.evaluate("window.samemView.replies.filter(r => r.cmd === 'prompt')[0].reply")
            assert reply["ok"], reply
            assert reply["pending"] == [new_id]
            deadline = time.monotonic() + 60
            seen = False
            while time.monotonic() < deadline and not seen:
                if sub.poll(500):
                    _, msg = decode_pub(sub.recv_multipart())
                    seen = any(o["id"] == new_id for o in msg["objects"])
            assert seen, "the box drawn in the browser did not become a track on the results stream"
            # stop and restart recording from the page (the control protocol's record command)
            page.click("#rec-stop")
            page.wait_for_function("window.samemView.replies.some(r => r.cmd === 'record')", timeout=30000)
            assert page.evaluate("window.samemView.replies.filter(r => r.cmd === 'record')[0].reply.ok")
            page.wait_for_function("window.samemView.framesDrawn >= 6", timeout=60000)
            heads = page.locator("thead th").all_inner_texts()
            assert "σ (nm)" in heads and heads.index("σ (nm)") == heads.index("α") + 1
            shot = tmp_path / "view.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 5000
            browser.close()
        stop_sending.set()
        sender.join(60)
        sub.close(0)
    finally:
        stop_sending.set()
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        ctx.destroy(linger=0)
    assert (tmp_path / "rec.h5").exists()


def test_remote_view_without_allow_remote_is_refused(tmp_path):
    """A non-loopback bind is refused before anything loads: one line, exit 2."""
    out = subprocess.run(
        CLI + ["serve", "--view", "0.0.0.0:0", "--model", "samem_tiny"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_view_options_validation():
    from samem.view.server import parse_view_address, view_options

    assert parse_view_address("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_view_address("[::1]:0") == ("::1", 0)
    for bad in ("8765", "http://127.0.0.1:80", "host:99999", ""):
        with pytest.raises(SamemError):
            parse_view_address(bad)
    with pytest.raises(SamemError, match="--allow-remote"):
        view_options("0.0.0.0:8765")
    remote = view_options("0.0.0.0:8765", allow_remote=True)
    assert remote.token and len(remote.token) >= 16  # generated
    assert view_options("127.0.0.1:1").token is None
    with pytest.raises(SamemError, match="view-token"):
        view_options("0.0.0.0:1", allow_remote=True, token="short")
    with pytest.raises(SamemError, match="max_fps"):
        view_options("127.0.0.1:1", max_fps=100)


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_remote_bind_needs_the_token_loopback_checks_host():
    from samem.view.server import ViewServer, view_options

    status = {"frames_received": 0}
    remote = ViewServer(view_options("0.0.0.0:0", allow_remote=True), lambda raw: status)
    url = remote.start()
    try:
        base = f"http://127.0.0.1:{remote.port}"
        assert _get(base + "/")[0] == 401
        assert _get(base + "/static/view.js")[0] == 401
        assert _get(base + "/ws")[0] == 401
        assert _get(base + "/?token=" + "x" * 32)[0] == 401
        code, body = _get(url.replace("0.0.0.0", "127.0.0.1"))
        assert code == 200 and b"samem" in body
        assert _get(base + "/static/view.js", {"Authorization": f"Bearer {remote.options.token}"})[0] == 200
    finally:
        remote.stop()
    local = ViewServer(view_options("127.0.0.1:0"), lambda raw: status)
    local.start()
    try:
        base = f"http://127.0.0.1:{local.port}"
        assert _get(base + "/")[0] == 200
        assert _get(base + "/static/nothing.js")[0] == 404
        assert _get(base + "/", {"Host": "attacker.example:80"})[0] == 403  # DNS rebinding
        assert _get(base + "/", {"Host": "[2001:db8::1]:80"})[0] == 403
        assert _get(base + "/", {"Host": f"localhost:{local.port}"})[0] == 200
        ws_headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"}
        ws_headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ=="
        assert _get(base + "/ws", {**ws_headers, "Origin": "http://attacker.example"})[0] == 403
    finally:
        local.stop()


def test_view_server_port_in_use_is_one_clear_error():
    from samem.view.server import ViewServer, view_options

    first = ViewServer(view_options("127.0.0.1:0"), lambda raw: {})
    first.start()
    try:
        with pytest.raises(SamemError, match="cannot serve the view"):
            ViewServer(view_options(f"127.0.0.1:{first.port}"), lambda raw: {}).start()
    finally:
        first.stop()


def test_record_command_parsing():
    assert parse_command(b'{"cmd": "record", "action": "stop"}').action == "stop"
    assert parse_command(b'{"cmd": "record", "action": "start"}').action == "start"
    for bad in (b'{"cmd": "record"}', b'{"cmd": "record", "action": "pause"}', b'{"cmd": "record", "x": 1}'):
        assert isinstance(parse_command(bad), str)


def test_view_state_from_topics():
    from samem.view.server import ViewState

    s = ViewState(trail_frames=3)
    for seq in range(5):
        s.listener("frame", {"seq": seq, "objects": [{"id": 1, "x": seq, "y": 2.0, "present": True}]})
    s.listener("feedback", {"seq": 4, "snr": 3.5, "events": [{"kind": "object_lost", "id": 1}]})
    s.listener(
        "stats",
        {"seq": 4, "particles": [{"particle": 1, "D_nm2_s": 10.0, "D_err_nm2_s": 1.0, "sigma_nm": 0.7}]},
    )
    assert s.drain()
    assert [x for _, x, _ in s.trails[1]] == [2.0, 3.0, 4.0]
    (row,) = s.particles()
    assert row["state"] == "lost" and row["D"] == 10.0 and row["track_frames"] == 5 and row["sigma"] == 0.7
    s.listener("frame", {"seq": 0, "objects": []})  # a new series
    s.drain()
    assert s.trails == {} and s.particles() == []


class _BoxTracker:
    """Stand-in tracker: each object is its prompt box, present on every frame."""

    def __init__(self):
        self.boxes = {}

    @property
    def object_ids(self):
        return list(self.boxes)

    def _results(self, frame):
        from samem.track.tracker import ObjectResult

        out = {}
        for oid, (x0, y0, x1, y1) in self.boxes.items():
            mask = np.zeros(frame.shape, bool)
            mask[int(y0) : int(y1), int(x0) : int(x1)] = True
            c = ((x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2)
            out[oid] = ObjectResult(mask, 0.9, True, c, (int(x0), int(y0), int(x1), int(y1)), 0.9)
        return out

    def start(self, frame, prompts):
        self.boxes.update(prompts)
        return self._results(frame)

    def step(self, frame, prompts=None):
        self.boxes.update(prompts or {})
        return self._results(frame)

    def remove(self, oid):
        self.boxes.pop(oid, None)

    def reset(self):
        self.boxes.clear()


def test_record_stop_and_start_through_the_control_handler(tmp_path):
    import h5py

    from samem.stream.client import FrameSender
    from samem.stream.service import Service
    from samem.stream.settings import load_settings

    settings = load_settings(
        None,
        {
            "sockets.ingest": ANY,
            "sockets.publish": ANY,
            "sockets.control": ANY,
            "recording.file": str(tmp_path / "rec.h5"),
            "ingest.policy": "block",
        },
    )
    ctx = zmq.Context()
    service = Service(settings, _BoxTracker, boxes=(0, {1: (10.0, 10.0, 20.0, 20.0)}), context=ctx)
    ep = service.start()
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()

    def command(obj):
        return service.handle_control(json.dumps(obj).encode())

    def wait_processed(n):
        deadline = time.monotonic() + 30
        while service.frames_processed < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.frames_processed >= n

    try:
        video, _ = _video(frames=9, size=48)
        with FrameSender(ep["ingest"], context=ctx) as tx:
            tx.start((48, 48), "uint8", pixel_size_nm=1.0, frame_interval_s=0.1)
            for i in range(3):
                tx.send(video[i], seq=i)
            wait_processed(3)
            stop = command({"cmd": "record", "action": "stop"})
            assert stop["ok"] and stop["frames"] == 3 and stop["file"].endswith("rec.h5"), stop
            assert not command({"cmd": "record", "action": "stop"})["ok"]
            assert service.status()["recording_paused"]
            for i in range(3, 6):
                tx.send(video[i], seq=i)
            wait_processed(6)
            start = command({"cmd": "record", "action": "start"})
            assert start["ok"] and start["file"].endswith("rec-2.h5"), start
            assert "already recording" in command({"cmd": "record", "action": "start"})["error"]
            for i in range(6, 9):
                tx.send(video[i], seq=i)
            wait_processed(9)
            tx.end()
    finally:
        service.stop()
        thread.join(30)
        ctx.destroy(linger=0)
    with h5py.File(tmp_path / "rec.h5") as f:
        assert list(f["frame_index"][:]) == [0, 1, 2]
    with h5py.File(tmp_path / "rec-2.h5") as f:
        assert list(f["frame_index"][:]) == [6, 7, 8]
    assert service.frames_not_recorded == 0


def test_record_without_a_recording_file_is_refused():
    from samem.stream.service import Service
    from samem.stream.settings import load_settings

    service = Service(load_settings(None, {}), _BoxTracker)
    reply = service._apply(parse_command(b'{"cmd": "record", "action": "start"}'))
    assert not reply["ok"] and "--record" in reply["error"]
