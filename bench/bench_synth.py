"""Benchmark of the synthetic generator: frames per second at a given size.

Usage::

    .venv/bin/python bench/bench_synth.py [--size 1024] [--particles 4] [--frames 200]
        [--preset medium] [--workers N] [--repeat 3] [--h5]

Reports, per repeat, the rendering rate of ``iter_frames`` (frames consumed and
dropped) and, with ``--h5``, the end-to-end rate of ``write_h5`` into a temporary
folder. Because other processes may share the CPU, it also reports the load average
and the CPU time this process got versus the wall time (``cpu_util``: 2.0 means two
cores were fully ours); ``frames_per_cpu_s`` = fps / cpu_util is the rate per fully
available core.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import psutil

from samem.synthetic import SynthParams, iter_frames, write_h5
from samem.synthetic.render import Renderer, default_workers


def _measure(fn) -> dict:
    proc = psutil.Process()
    c0, t0 = proc.cpu_times(), time.perf_counter()
    load0 = os.getloadavg()[0]
    fn()
    wall = time.perf_counter() - t0
    c1 = proc.cpu_times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"wall_s": wall, "cpu_util": cpu / wall, "load_before": load0, "load_after": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--h5", action="store_true", help="also time write_h5 end to end")
    args = ap.parse_args(argv)
    params = SynthParams.from_preset(
        args.preset, size=args.size, n_particles=args.particles, frames=args.frames
    )
    workers = args.workers or default_workers()
    info = {
        "size": args.size,
        "particles": args.particles,
        "frames": args.frames,
        "preset": args.preset,
        "workers": workers,
        "cpus": psutil.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
    }
    t0 = time.perf_counter()
    renderer = Renderer(params)
    info["setup_s"] = round(time.perf_counter() - t0, 3)
    print(json.dumps(info))
    for rep in range(args.repeat):
        res = _measure(lambda: [None for _ in iter_frames(params, workers, renderer)])
        res.update(what="render", rep=rep, fps=args.frames / res["wall_s"])
        res["frames_per_cpu_s"] = res["fps"] / res["cpu_util"]
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}))
        if args.h5:
            with tempfile.TemporaryDirectory() as d:
                res = _measure(lambda: write_h5(params, Path(d) / "bench.h5", workers=workers))
                res.update(
                    what="write_h5",
                    rep=rep,
                    fps=args.frames / res["wall_s"],
                    file_mb=(Path(d) / "bench.h5").stat().st_size / 1e6,
                )
                res["frames_per_cpu_s"] = res["fps"] / res["cpu_util"]
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
