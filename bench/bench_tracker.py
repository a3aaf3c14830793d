"""Speed and memory of samem's StreamingTracker against sam2's official video predictor.

Every case runs in its own subprocess (clean peak RSS) on the same synthetic LPTEM video
(``samem.synthetic`` preset ``medium``, 1024 x 1024 uint8, boxes of the first frame's
particles) with seeded random weights (speed does not depend on the weights).

Cases (``--cases``):
  roi-compact    samem ROI mode, samem_compact (the CPU real-time design)
  roi-compact-unsmoothed  the same with smooth_frames=1 (the cost of mask smoothing)
  roi-compact-bare        the same with smooth_frames=1, denoise=0, centroid=mask (the cost
                 of all the tracker's own steps around SAM 2)
  roi-compact-intensity   the same with centroid=intensity (the cost of the matched filter)
  roi-compact-mirror      the same with mirror=True (each window also tracked mirrored)
  roi-compact-stack5      the same with stack_frames=5 (a second SAM 2 look per object)
  roi-compact-noverify    the same with verify=False (the cost of the position check)
  roi-default    samem ROI mode with the shipped trained model (the position check then
                 confirms and refuses what it would in use; random weights make it refuse
                 every mask and re-prompt often)
  roi-default-noverify    the same with verify=False
  full-compact   samem full-frame mode, samem_compact (frame resized to 128)
  full-t         samem full-frame mode, sam2.1_hiera_t at 1024
  official-t     sam2 SAM2VideoPredictor.propagate_in_video, sam2.1_hiera_t at 1024, fed
                 the same preprocessed frames (its frame loader is patched; it holds the
                 whole video in memory, as it does for a folder of JPEGs)

Per case: frames/s (1 / mean step latency), step latency p50/p99 (ms; the prompted first
frame and ``--warmup`` frames excluded), CPU time per step (ms, all threads of the process;
with one thread it is what the step costs on an idle core, whatever else the machine runs),
peak RSS (MiB, ``ru_maxrss``), RSS growth between the end of warm-up and the last frame,
and the 1-minute load average before and after the case (other jobs slow every timing).

On a CPU shared with other jobs, OpenMP's default of spinning idle threads makes two
threads 30x slower than one (measured here); the cases therefore run with
``OMP_WAIT_POLICY=PASSIVE`` unless ``--omp-wait-policy`` says otherwise.

Usage::

    .venv/bin/python bench/bench_tracker.py --threads 2 --objects 1 4 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

CASES = {
    "roi-compact": ("samem", "roi", "samem_compact"),
    "roi-compact-unsmoothed": ("samem", "roi", "samem_compact", {"smooth_frames": 1}),
    "roi-compact-bare": (
        "samem",
        "roi",
        "samem_compact",
        {"smooth_frames": 1, "denoise": 0.0, "centroid": "mask"},
    ),
    "roi-compact-intensity": ("samem", "roi", "samem_compact", {"centroid": "intensity"}),
    "roi-compact-mirror": ("samem", "roi", "samem_compact", {"mirror": True}),
    "roi-compact-stack5": ("samem", "roi", "samem_compact", {"stack_frames": 5}),
    "roi-compact-noverify": ("samem", "roi", "samem_compact", {"verify": False}),
    "roi-default": ("samem", "roi", "default"),
    "roi-default-noverify": ("samem", "roi", "default", {"verify": False}),
    "full-compact": ("samem", "full", "samem_compact"),
    "full-t": ("samem", "full", "sam2.1_hiera_t"),
    "official-t": ("official", "full", "sam2.1_hiera_t"),
}


def _video_params(frames: int, seed: int):
    from samem.synthetic import SynthParams

    return SynthParams.from_preset("medium", frames=frames, size=1024, seed=seed)


def _boxes(labels0: np.ndarray, n: int) -> dict[int, tuple[float, float, float, float]]:
    ids = [i for i in np.unique(labels0) if i != 0][:n]
    if len(ids) < n:
        raise SystemExit(f"only {len(ids)} particles visible in frame 0, asked for {n}")
    boxes = {}
    for pid in ids:
        rows, cols = np.nonzero(labels0 == pid)
        boxes[int(pid)] = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))
    return boxes


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _summary(latencies_s: list[float], cpu_s: list[float], warmup: int, rss_after_warmup: float) -> dict:
    steps = np.asarray(latencies_s[warmup:]) * 1e3
    return {
        "frames_timed": int(steps.size),
        "fps": float(1e3 / steps.mean()),
        "p50_ms": float(np.percentile(steps, 50)),
        "p99_ms": float(np.percentile(steps, 99)),
        "cpu_ms": float(np.mean(cpu_s[warmup:]) * 1e3),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_growth_mib": _rss_mib() - rss_after_warmup,
    }


def run_samem(mode: str, config: str, n_obj: int, frames: int, warmup: int, seed: int, **options) -> dict:
    from samem.model import build_model
    from samem.synthetic import iter_frames
    from samem.track import StreamingTracker

    if config == "default":  # the shipped trained weights
        from samem.model import load_model

        model = load_model("default", device="cpu")
    else:
        model = build_model(config, "cpu", seed=seed)
    tracker = StreamingTracker(model, mode=mode, **options)
    latencies, cpu, rss_warm = [], [], _rss_mib()
    for t, (frame, labels, _) in enumerate(iter_frames(_video_params(frames, seed), workers=1)):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        if t == 0:
            tracker.start(frame, _boxes(labels, n_obj))
            start_s = time.perf_counter() - tic
            continue
        tracker.step(frame)
        latencies.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
        if t == warmup:
            rss_warm = _rss_mib()
    return {"start_s": start_s, **_summary(latencies, cpu, warmup, rss_warm)}


def run_official(config: str, n_obj: int, frames: int, warmup: int, seed: int) -> dict:
    import sam2.sam2_video_predictor as svp
    import torch

    from samem.model import build_model
    from samem.synthetic import generate
    from samem.track.preprocess import normalize_frame, resize_square, to_model_input

    model = build_model(config, "cpu", seed=seed, target="sam2.sam2_video_predictor.SAM2VideoPredictor")
    video = generate(_video_params(frames, seed), workers=1)
    size = model.image_size
    tic = time.perf_counter()
    images = torch.cat([to_model_input(resize_square(normalize_frame(f)[0], size)) for f in video.frames])
    h, w = video.frames.shape[1:]
    svp.load_video_frames = lambda **kwargs: (images, h, w)  # the predictor's own loader reads JPEG folders
    state = model.init_state(video_path="<preprocessed>")
    for oid, box in _boxes(video.labels[0], n_obj).items():
        model.add_new_points_or_box(state, frame_idx=0, obj_id=oid, box=box)
    start_s = time.perf_counter() - tic
    latencies, cpu, rss_warm = [], [], _rss_mib()
    tic, cpu_tic = time.perf_counter(), time.process_time()
    for t, _, _ in model.propagate_in_video(state):
        if t > 0:
            latencies.append(time.perf_counter() - tic)
            cpu.append(time.process_time() - cpu_tic)
        if t == warmup:
            rss_warm = _rss_mib()
        tic, cpu_tic = time.perf_counter(), time.process_time()
    return {"start_s": start_s, **_summary(latencies, cpu, warmup, rss_warm)}


def _one(args) -> None:
    import cv2
    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    kind, mode, config, *extra = CASES[args.one]
    options = extra[0] if extra else {}
    load_before = os.getloadavg()[0]
    with torch.inference_mode():
        if kind == "samem":
            res = run_samem(mode, config, args.objects[0], args.frames, args.warmup, args.seed, **options)
        else:
            res = run_official(config, args.objects[0], args.frames, args.warmup, args.seed)
    res["load_before"], res["load_after"] = load_before, os.getloadavg()[0]
    res["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY", "unset").lower()
    print(
        json.dumps(
            {"case": args.one, "config": config, "objects": args.objects[0], "threads": args.threads, **res}
        )
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--objects", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=200, help="frames per samem compact case")
    ap.add_argument("--slow-frames", type=int, default=12, help="frames per Hiera-T case (seconds each)")
    ap.add_argument("--warmup", type=int, default=5, help="step frames excluded from the statistics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--omp-wait-policy",
        choices=["passive", "active", "unset"],
        default="passive",
        help="OMP_WAIT_POLICY of the cases (passive: idle OpenMP threads sleep instead of spinning, "
        "which keeps 2 threads usable on a CPU shared with other jobs)",
    )
    ap.add_argument("--json", help="append result lines to this file")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table at the end")
    ap.add_argument("--one", choices=list(CASES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        _one(args)
        return 0
    rows = []
    for case in args.cases:
        frames = args.slow_frames if case.endswith("-t") else args.frames
        warmup = min(args.warmup, max(frames - 4, 0))
        for n in args.objects:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                case,
                "--objects",
                str(n),
                "--threads",
                str(args.threads),
                "--frames",
                str(frames),
                "--warmup",
                str(warmup),
                "--seed",
                str(args.seed),
            ]
            env = dict(os.environ)
            env.pop("OMP_WAIT_POLICY", None)
            if args.omp_wait_policy != "unset":
                env["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return out.returncode
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    if args.markdown:
        print(
            "\n| case | objects | threads | frames | fps | p50 ms | p99 ms | CPU ms/frame | peak RSS MiB "
            "| RSS growth MiB | load before/after |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['case']} | {r['objects']} | {r['threads']} | {r['frames_timed']} | {r['fps']:.2f} | "
                f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['cpu_ms']:.0f} | {r['peak_rss_mib']:.0f} | "
                f"{r['rss_growth_mib']:.0f} | {r['load_before']:.1f}/{r['load_after']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
