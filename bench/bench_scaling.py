"""How samem's cost grows with the number of particles (issue 25), and what a code change bought.

For each particle count (``--particles``, default 1 4 8 16 32 64) one synthetic video
(``samem.synthetic`` preset ``--preset`` medium, ``--size`` 1024 px, ``--frames`` 60, seed
``--seed-base`` + count: seeds 3001+ are used by no other benchmark, nor by training) is
tracked from its truth's first-frame boxes with the shipped model, in two ways, each in its own
process (clean peak RSS):

* ``analyze``: the whole ``samem eval --baseline none`` / ``samem analyze`` pipeline (read,
  track, link, statistics, results.h5, tracks.csv, stats.json; no plots): frames/s = frames /
  ``analyze``'s elapsed time, as ``samem eval`` reports it, CPU ms per frame of its frame loop,
  and the mean IoU against the truth (scored afterwards, not timed);
* ``tracker``: ``StreamingTracker.step`` alone on frames already in memory: frames/s
  (1 / mean step), step p50/p99 (ms), CPU ms per step (all threads), peak RSS.

The first ``--warmup`` steps are not timed (tracker). ``--compare REV`` also runs every case
with the samem package and configs of git revision REV (``git archive``, imported through
PYTHONPATH), interleaved with the working tree's run on the same videos, and reports the
ratios: on a machine shared with other jobs, absolute frames/s vary by 2x from minute to
minute, while the ratio of two interleaved runs and the CPU time per frame are steadier.
The 1-minute load average before and after each case is recorded.

Usage (the issue's targets are for 2 cores)::

    .venv/bin/python bench/bench_scaling.py --threads 2 --compare dca7b61 \
        --json bench/records/speed/scaling.json
    .venv/bin/python bench/bench_scaling.py --particles 4 32 --modes tracker --tracker cpu_bf16=true
    .venv/bin/python bench/bench_scaling.py --device cuda --threads 8   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT / "bench" / "results" / "videos_scaling"


def video_path(folder: Path, preset: str, n: int, frames: int, size: int, seed: int) -> Path:
    """The video with ``n`` particles, generated once (with overlaps allowed if they must be)."""
    from samem.errors import SamemError
    from samem.synthetic import SynthParams, write_h5

    path = folder / f"{preset}_{n}p_{size}px_{frames}f_{seed}.h5"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    params = SynthParams.from_preset(preset, frames=frames, size=size, n_particles=n, seed=seed)
    try:
        write_h5(params, path, workers=1, progress=False)
    except SamemError:  # too many particles to place without overlaps (64 at 1024 px)
        write_h5(params.replace(allow_overlap=True), path, workers=1, progress=False)
    return path


# ---------------------------------------------------------------------- workers (subprocesses)
def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work_tracker(video: str, model: str, device: str, warmup: int, options: dict) -> dict:
    import h5py

    import samem
    from samem.eval.evaluate import truth_boxes

    tracker = samem.StreamingTracker(samem.load_model(model, device=device), **options)
    with h5py.File(video, "r") as f:
        frames = f["frames"][()]
    boxes = truth_boxes(video)
    wall, cpu = [], []
    tracker.start(frames[0], boxes)
    for frame in frames[1:]:
        tic, ctic = time.perf_counter(), time.process_time()
        tracker.step(frame)
        if device.startswith("cuda"):  # pragma: no cover - GPU
            import torch

            torch.cuda.synchronize()
        wall.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - ctic)
    steps = np.asarray(wall[warmup:]) * 1e3
    return {
        "particles": len(boxes),
        "frames_timed": int(steps.size),
        "fps": float(1e3 / steps.mean()),
        "p50_ms": float(np.percentile(steps, 50)),
        "p99_ms": float(np.percentile(steps, 99)),
        "cpu_ms": float(np.mean(cpu[warmup:]) * 1e3),
        "peak_rss_mib": _peak_rss_mib(),
    }


def work_analyze(video: str, model: str, device: str, options: dict, iou: bool) -> dict:
    import samem
    from samem.eval.evaluate import read_results, score, truth_boxes
    from samem.stream.offline import analyze_video
    from samem.stream.settings import load_settings

    cpu = {}

    def progress(indices):  # CPU time of the frame loop (reading, tracking, linking, recording)
        cpu["start"] = time.process_time()
        yield from indices
        cpu["end"] = time.process_time()

    boxes = truth_boxes(video)
    # as samem eval's run_samem, with room for every particle in one prompt (64 > the default 32)
    settings = load_settings(None, {"prompts.max_per_prompt": max(32, len(boxes))})
    tracker = samem.StreamingTracker(samem.load_model(model, device=device), **options)
    with tempfile.TemporaryDirectory(prefix="samem_scaling_") as out:
        report = analyze_video(
            video, out, tracker, settings, boxes=(0, boxes), overwrite=True, plots=False, progress=progress
        )
        results, elapsed = Path(out) / "results.h5", report.elapsed_s
        frames = _frames(video)
        row = {
            "particles": len(boxes),
            "frames": frames,
            "fps": frames / elapsed,
            "elapsed_s": elapsed,
            "cpu_ms": (cpu["end"] - cpu["start"]) / frames * 1e3,
            "peak_rss_mib": _peak_rss_mib(),
        }
        if iou:
            labels, tracks = read_results(results)
            row["iou_mean"] = score(video, labels, tracks)["iou_mean"]
    return row


def _frames(video: str) -> int:
    import h5py

    with h5py.File(video, "r") as f:
        return len(f["frames"])


def worker_main(spec: dict) -> None:
    import torch

    torch.set_num_threads(spec["threads"])
    if spec["mode"] == "tracker":
        out = work_tracker(spec["video"], spec["model"], spec["device"], spec["warmup"], spec["options"])
    else:
        out = work_analyze(spec["video"], spec["model"], spec["device"], spec["options"], spec["iou"])
    import samem

    out["samem"] = str(Path(samem.__file__).parent)
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------- driver
def export_revision(rev: str, dest: Path) -> Path:
    """``samem/`` and ``configs/`` of git revision ``rev`` under ``dest`` (for PYTHONPATH)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "samem", "configs"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_case(spec: dict, tree: Path | None, args) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(args.threads)
    if args.omp_wait_policy != "unset":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    if tree is not None:
        env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    load0 = os.getloadavg()[0]
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # never import the working tree by accident
    )
    load1 = os.getloadavg()[0]
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"case {spec} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return {**json.loads(lines[-1][len("RESULT ") :]), "load_before": load0, "load_after": load1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--particles", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    ap.add_argument("--modes", nargs="+", choices=["analyze", "tracker"], default=["analyze", "tracker"])
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seed-base", type=int, default=3000, help="video seed = this + particle count")
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5, help="untimed tracker steps after the prompt")
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE", help="tracker option; repeatable")
    ap.add_argument("--compare", metavar="REV", help="also run git revision REV, interleaved")
    ap.add_argument(
        "--compare-tracker", action="append", metavar="NAME=VALUE", help="tracker option of the REV runs only"
    )
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repetitions of every case")
    ap.add_argument("--no-iou", action="store_true", help="analyze: do not score the IoU")
    ap.add_argument("--omp-wait-policy", default="PASSIVE", help="OMP_WAIT_POLICY of the cases ('unset')")
    ap.add_argument("--videos-dir", default=str(VIDEOS))
    ap.add_argument("--json", help="write all rows here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    from samem.track.options import parse_options

    options = parse_options(args.tracker)
    base_options = parse_options(args.compare_tracker) if args.compare_tracker else options
    videos = {
        n: video_path(Path(args.videos_dir), args.preset, n, args.frames, args.size, args.seed_base + n)
        for n in args.particles
    }
    trees: dict[str, Path | None] = {"new": None}
    tmp = None
    if args.compare:
        tmp = tempfile.TemporaryDirectory(prefix="samem_rev_")
        trees["base"] = export_revision(args.compare, Path(tmp.name))
    rows = []
    t0 = time.perf_counter()
    for rep in range(args.repeats):
        for mode in args.modes:
            for n in args.particles:
                for name, tree in trees.items():
                    spec = {
                        "mode": mode,
                        "video": str(videos[n]),
                        "model": args.model,
                        "device": args.device,
                        "threads": args.threads,
                        "warmup": args.warmup,
                        "options": base_options if name == "base" else options,
                        "iou": not args.no_iou,
                    }
                    row = {"code": name, "mode": mode, "repeat": rep, **run_case(spec, tree, args)}
                    rows.append(row)
                    print(_line(row), flush=True)
    if tmp is not None:
        tmp.cleanup()
    payload = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.threads} torch threads, OMP_WAIT_POLICY={args.omp_wait_policy}, device {args.device}",
        "compare": args.compare,
        "tracker_options": options,
        "compare_tracker_options": base_options if args.compare else None,
        "preset": args.preset,
        "size": args.size,
        "frames": args.frames,
        "seed_base": args.seed_base,
        "elapsed_s": time.perf_counter() - t0,
        "rows": rows,
        "ratios": ratios(rows) if args.compare else None,
    }
    print("\n" + markdown(rows, args.compare))
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=1))


def _line(r: dict) -> str:
    extra = f" p50 {r['p50_ms']:.0f} p99 {r['p99_ms']:.0f} ms" if r["mode"] == "tracker" else ""
    iou = f" IoU {r['iou_mean']:.3f}" if "iou_mean" in r else ""
    return (
        f"{r['code']:4s} {r['mode']:8s} {r['particles']:3d} particles: {r['fps']:6.2f} frames/s{extra}, "
        f"CPU {r['cpu_ms']:.0f} ms/frame, RSS {r['peak_rss_mib']:.0f} MiB{iou} "
        f"(load {r['load_before']:.1f}/{r['load_after']:.1f})"
    )


def ratios(rows: list[dict]) -> list[dict]:
    """new / base per mode and particle count (frames/s; CPU ms per frame), means of repeats."""
    out = []
    keys = sorted({(r["mode"], r["particles"]) for r in rows})
    for mode, n in keys:
        pick = {
            c: [r for r in rows if (r["mode"], r["particles"], r["code"]) == (mode, n, c)]
            for c in ("new", "base")
        }
        if not pick["new"] or not pick["base"]:
            continue
        mean = {c: {k: float(np.mean([r[k] for r in pick[c]])) for k in ("fps", "cpu_ms")} for c in pick}
        out.append(
            {
                "mode": mode,
                "particles": n,
                "fps_ratio": mean["new"]["fps"] / mean["base"]["fps"],
                "cpu_ratio": mean["new"]["cpu_ms"] / mean["base"]["cpu_ms"],
            }
        )
    return out


def markdown(rows: list[dict], compare: str | None) -> str:
    head = (
        "| code | mode | particles | frames/s | p50 ms | p99 ms | CPU ms/frame | peak RSS MiB | mean IoU "
        "| load |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        code = "working tree" if r["code"] == "new" else compare
        p50 = f"{r['p50_ms']:.0f}" if "p50_ms" in r else ""
        p99 = f"{r['p99_ms']:.0f}" if "p99_ms" in r else ""
        iou = f"{r['iou_mean']:.3f}" if "iou_mean" in r else ""
        lines.append(
            f"| {code} | {r['mode']} | {r['particles']} | {r['fps']:.2f} | {p50} | {p99} | {r['cpu_ms']:.0f} "
            f"| {r['peak_rss_mib']:.0f} | {iou} | {r['load_before']:.1f}/{r['load_after']:.1f} |"
        )
    if compare:
        lines += [
            "",
            "| mode | particles | frames/s new/base | CPU per frame new/base |",
            "|---|---|---|---|",
        ]
        for q in ratios(rows):
            lines.append(f"| {q['mode']} | {q['particles']} | {q['fps_ratio']:.2f} | {q['cpu_ratio']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
