"""A long fuzz campaign against a live ``samem serve`` (in process, loopback): cases, crashes, RSS.

The service runs with a stand-in tracker (random-walk objects under the prompted boxes, so
trajectories, live statistics and MSD fits run on every frame) and records to a temporary
HDF5 file. For ``--seconds`` the campaign sends, from a seeded generator:

- ingest messages: valid series (random shapes and dtypes, gaps in seq), and malformed ones:
  random bytes, headers with random JSON values in every field, truncated and oversized
  payloads, NaN frames, duplicate / backward seq, messages of many parts, series names with
  control characters or unpaired surrogates;
- control commands: valid prompts (also at and over the object limits), removes, resets,
  status, and random bytes / JSON / ids in every spelling.

A *crash* is anything that should never happen: an ERROR logged by the service (a handler
raised), an ``internal error`` or missing reply on the control socket, a service thread that
died, or a broken counter invariant at the end (every frame received is processed, dropped or
failed; every message is accepted or rejected). RSS (``VmRSS``) is sampled every 0.25 s.
Prints and writes a JSON summary.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/fuzz_service.py --seconds 120 \
        --out bench/records/service/fuzz_service.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq

from samem.stream.protocol import DTYPES, encode_end, encode_frame
from samem.stream.service import Service
from samem.stream.settings import load_settings


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass(frozen=True)
class _Result:
    mask: np.ndarray
    score: float
    present: bool
    centroid: tuple
    bbox: tuple | None
    iou: float = 0.9


class WalkTracker:
    """StreamingTracker stand-in: each prompted object random-walks from its box centre."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.pos: dict[int, np.ndarray] = {}

    @property
    def object_ids(self):
        return sorted(self.pos)

    def reset(self):
        self.pos.clear()

    def remove(self, oid):
        self.pos.pop(oid, None)

    def start(self, frame, boxes):
        self.reset()
        return self.step(frame, boxes)

    def step(self, frame, prompts=None):
        h, w = frame.shape
        for oid, (x0, y0, x1, y1) in (prompts or {}).items():
            self.pos[oid] = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        out = {}
        for oid, p in self.pos.items():
            p += self.rng.normal(0, 0.7, 2)
            np.clip(p, 0, [w - 1, h - 1], out=p)
            x, y = int(p[0]), int(p[1])
            mask = np.zeros((h, w), bool)
            mask[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = True
            present = self.rng.random() > 0.05
            bbox = (max(0, x - 1), max(0, y - 1), min(w, x + 2), min(h, y + 2))
            out[oid] = _Result(mask, 0.9 if present else 0.1, present, (float(p[0]), float(p[1])), bbox)
        return out


class ErrorLog(logging.Handler):
    """Counts ERROR records of samem's loggers (a handler that raised)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record):
        if record.name.startswith("samem"):
            self.records.append(f"{record.name}: {record.getMessage()[:200]}")


def _json_value(r: random.Random, depth=0):
    kinds = ["int", "big", "float", "str", "none", "bool", "list", "dict"] if depth < 2 else ["int", "str"]
    k = r.choice(kinds)
    if k == "int":
        return r.randint(-5, 70000)
    if k == "big":
        return r.choice([2**63, -(2**63) - 1, 10**30])
    if k == "float":
        return r.choice([0.5, -1.0, 1e308, 3.0])
    if k == "str":
        return r.choice(
            ["", "41", "0041", "\u00b2", "\u0664\u0662", "a\u0000b", "x" * 300, "\ud800", "start"]
        )
    if k == "none":
        return None
    if k == "bool":
        return r.random() < 0.5
    if k == "list":
        return [_json_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    return {str(_json_value(r, 2)): _json_value(r, depth + 1) for _ in range(r.randint(0, 3))}


def _dumps(obj) -> bytes:
    return json.dumps(obj).encode("utf-8", "surrogatepass")


class Campaign:
    def __init__(self, args):
        self.args = args
        self.r = random.Random(args.seed)
        self.tmp = Path(tempfile.mkdtemp(prefix="samem-fuzz-"))
        any_ = "tcp://127.0.0.1:*"
        self.settings = load_settings(
            None,
            {
                "sockets.ingest": any_,
                "sockets.publish": any_,
                "sockets.control": any_,
                "ingest.max_frame_bytes": 1 << 20,
                "ingest.queue_frames": 8,
                "stats.every_frames": 5,
                "recording.file": str(self.tmp / "rec.h5") if args.record else None,
                "recording.flush_every": 5,
                "control.reply_timeout_s": 5.0,
            },
        )
        self.errors = ErrorLog()
        logging.getLogger().addHandler(self.errors)
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("samem").setLevel(logging.WARNING)
        self.service = Service(self.settings, lambda: WalkTracker(self.r.randint(0, 2**31)), "fuzz")
        self.endpoints = self.service.start()
        self.thread = threading.Thread(target=self.service.serve_forever, daemon=True)
        self.thread.start()
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.setsockopt(zmq.SNDTIMEO, 2000)
        self.push.connect(self.endpoints["ingest"])
        self.req = None
        self.shape = (32, 32)
        self.dtype = "uint8"
        self.seq = 0
        self.counts = {"ingest": 0, "control": 0, "frames_sent_valid": 0, "control_ok": {}}
        self.crashes: list[str] = []

    # ------------------------------------------------------------------ ingest
    def _send(self, parts):
        try:
            self.push.send_multipart(parts)
            self.counts["ingest"] += 1
        except zmq.Again:
            pass

    def ingest_case(self):
        r = self.r
        k = r.random()
        if k < 0.01:  # a new series
            self.shape = (r.randint(8, 48), r.randint(8, 48))
            self.dtype = r.choice(DTYPES)
            self.seq = r.randint(0, 100)
            name = r.choice([None, "run", "Probe ü 試料", "a\u0000b", "\x1b[31m", "x" * 257])
            start = {"type": "start", "shape": list(self.shape), "dtype": self.dtype, "series": name}
            start.update(pixel_size_nm=r.choice([0.5, None]), frame_interval_s=r.choice([0.05, None]))
            self._send([_dumps(start)])
        elif k < 0.6:  # a valid frame (seq gaps now and then)
            self.seq += 1 + (r.random() < 0.1) * r.randint(1, 5)
            frame = (np.random.default_rng(self.seq).random(self.shape) * 100).astype(self.dtype)
            self._send(encode_frame(frame, self.seq, time.time()))
            self.counts["frames_sent_valid"] += 1
        elif k < 0.61:
            self._send(encode_end(r.choice([None, 3, -1])))
        elif k < 0.72:
            self._send(
                [bytes(r.getrandbits(8) for _ in range(r.randint(0, 64))) for _ in range(r.randint(1, 3))]
            )
        elif k < 0.82:  # random values in every header field
            fields = {
                f: _json_value(r)
                for f in ("type", "seq", "timestamp", "shape", "dtype", "series")
                if r.random() < 0.7
            }
            fields.setdefault("type", r.choice(["start", "frame", "end"]))
            self._send([_dumps(fields)] + ([b"\0" * r.randint(0, 4096)] if r.random() < 0.5 else []))
        elif k < 0.88:  # wrong payload length, NaN, duplicate or backward seq
            frame = np.zeros(self.shape, self.dtype)
            header, payload = encode_frame(frame, self.seq + r.choice([0, -1, 1]), 0.0)
            payload = bytes(payload)
            if self.dtype.startswith("float") and r.random() < 0.5:
                bad = frame.copy()
                bad.flat[0] = np.nan
                header, payload = encode_frame(bad, self.seq + 1, 0.0)
            elif r.random() < 0.5:
                payload = payload[: r.randint(0, len(payload))]
            self._send([header, payload])
        elif k < 0.93:  # many parts, each under the part cap
            self._send([b'{"type": "end"}'] + [b"\0" * r.randint(0, 50_000)] * r.randint(3, 40))
        else:  # over the payload cap (still under ZeroMQ's part cap)
            header = _dumps(
                {
                    "type": "frame",
                    "seq": self.seq + 1,
                    "timestamp": 0,
                    "shape": [1024, 1024],
                    "dtype": "uint16",
                }
            )
            self._send([header, b"\0" * (r.randint(1, 2) << 20)])

    # ------------------------------------------------------------------ control
    def _command(self, raw: bytes):
        if self.req is None:
            self.req = self.ctx.socket(zmq.REQ)
            self.req.setsockopt(zmq.LINGER, 0)
            self.req.setsockopt(zmq.RCVTIMEO, 15000)
            self.req.connect(self.endpoints["control"])
        self.counts["control"] += 1
        self.req.send(raw)
        try:
            reply = json.loads(self.req.recv())
        except zmq.Again:
            self.crashes.append(f"no reply to {raw[:80]!r}")
            self.req.close(0)
            self.req = None
            return None
        if reply.get("ok") is True:
            cmd = raw[:40].decode(errors="replace").split('"cmd": "')[-1].split('"')[0]
            self.counts["control_ok"][cmd] = self.counts["control_ok"].get(cmd, 0) + 1
        if not isinstance(reply.get("ok"), bool) or (
            not reply["ok"] and "internal error" in reply.get("error", "")
        ):
            self.crashes.append(f"bad reply to {raw[:80]!r}: {str(reply)[:200]}")
        return reply

    def control_case(self):
        r = self.r
        h, w = self.shape
        k = r.random()
        if k < 0.3:
            n = r.choice([1, 3, 32, 33, 200])
            boxes = {}
            for _ in range(n):
                x0, y0 = r.uniform(0, w - 2), r.uniform(0, h - 2)
                key = r.choice([str(r.randint(1, 300)), r.randint(1, 300), "0041", "\u00b2"])
                boxes[str(key)] = [x0, y0, min(w, x0 + r.uniform(1, 8)), min(h, y0 + r.uniform(1, 8))]
            self._command(_dumps({"cmd": "prompt", "boxes": boxes}))
        elif k < 0.45:
            ids = [
                r.choice([r.randint(1, 300), str(r.randint(1, 300)), "\u00b2", "0041", -1])
                for _ in range(r.randint(1, 4))
            ]
            self._command(_dumps({"cmd": "remove", "ids": ids}))
        elif k < 0.5:
            self._command(b'{"cmd": "reset"}')
        elif k < 0.7:
            self._command(b'{"cmd": "status"}')
        elif k < 0.85:
            self._command(
                _dumps(
                    {
                        "cmd": r.choice(["prompt", "remove", "status", "nope"]),
                        **{str(_json_value(r, 2)): _json_value(r)},
                    }
                )
            )
        else:
            self._command(bytes(r.getrandbits(8) for _ in range(r.randint(0, 80))))

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        rss = [rss_mb()]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                rss.append(rss_mb())
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        deadline = t0 + self.args.seconds
        while time.monotonic() < deadline:
            for _ in range(20):
                self.ingest_case()
            self.control_case()
            if not self.thread.is_alive():
                self.crashes.append("the service stopped")
                break
        self._send(encode_end())
        time.sleep(1.0)
        status = None
        for _ in range(100):  # wait for the queue to drain
            status = self._command(b'{"cmd": "status"}')
            if status and status["lag"]["frames"] == 0:
                break
            time.sleep(0.1)
        alive = all(t.is_alive() for t in self.service._threads)
        stop.set()
        elapsed = time.monotonic() - t0
        self.service.stop()
        self.thread.join(30)
        self.crashes += [f"logged: {m}" for m in self.errors.records]
        if not alive:
            self.crashes.append("a service thread died")
        c = self.service.ingest.counters
        if c.messages != c.messages_rejected + c.frames_received + c.series_started + c.series_ended:
            self.crashes.append(f"message counters disagree: {c}")
        s = self.service
        accounted = s.frames_processed + s.queue.dropped + s.frames_failed
        if c.frames_received != accounted:
            self.crashes.append(
                f"frames received {c.frames_received} != processed {s.frames_processed} + dropped "
                f"{s.queue.dropped} + failed {s.frames_failed}"
            )
        shutil.rmtree(self.tmp, ignore_errors=True)
        return {
            "seconds": round(elapsed, 1),
            "seed": self.args.seed,
            "cases": {
                "ingest_messages": self.counts["ingest"],
                "control_commands": self.counts["control"],
                "control_accepted": self.counts["control_ok"],
            },
            "crashes": len(self.crashes),
            "crash_details": self.crashes[:20],
            "rss_mb": {"start": round(rss[0], 1), "peak": round(max(rss), 1), "end": round(rss[-1], 1)},
            "service": {
                "messages": c.messages,
                "messages_rejected": c.messages_rejected,
                "rejected_by_reason": dict(c.rejected),
                "frames_received": c.frames_received,
                "frames_processed": s.frames_processed,
                "frames_dropped": s.queue.dropped,
                "frames_failed": s.frames_failed,
                "recording_failures": s.recording_failures,
                "series_started": c.series_started,
            },
        }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="length of the campaign")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-record", dest="record", action="store_false", help="run without --record")
    p.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = p.parse_args(argv)
    result = Campaign(args).run()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
