"""``samem synth``: render a synthetic LPTEM video with exact ground truth.

Examples::

    samem synth out/thick.h5 --preset thick --frames 200 --seed 3
    samem synth out/ds --format folder --preset thin --particles 6 --thickness-nm 20
    samem synth out/custom.h5 --recipe my_recipe.yaml --dose-e-A2 0.3 --shapes sphere=1,rod=2
    samem synth out/pinned.h5 --recipe ctrw --wait-exponent 0.4 0.6
    samem synth out/real.h5 --tracks AuNRs_300.mat --tracks-pixel-size-nm 1 --particles 3

Every parameter of :class:`samem.synthetic.SynthParams` is an option (``--thickness-nm``,
``--D-nm2-s LO HI``, ...); given options override the preset or recipe.

With ``--tracks FILE`` the particles move exactly as the trajectories in FILE
(:mod:`samem.synthetic.tracks`). Unless given: ``--frames`` is the most frames the chosen
tracks all cover, ``--particles`` the preset's count (at most the number of tracks, or
the number of ``--track-ids``), the source units the file's own (else the video's), and
the stage does not drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import numpy as np

from samem.errors import SamemError

#: fields set with their own short options, or not meant for the command line
_SPECIAL = {"frames", "size", "seed", "n_particles", "name", "snr_range", "randomize"}


#: allowed values of text parameters
_CHOICES = {
    "contrast": ("dark", "bright", "mixed"),
    "boundary": ("open", "reflect"),
    "dtype": ("uint8", "uint16"),
    "shot_noise": ("auto", "poisson", "gaussian"),
    "tracks_place": ("random", "centre", "keep"),
}

#: parameters that may be None (``none`` on the command line), with the type of other values
_NONE_OK = {
    "jpeg_quality": int,
    "wait_max_s": float,
    "tracks_pixel_size_nm": float,
    "tracks_frame_interval_s": float,
}


def _docs(cls) -> dict[str, str]:
    """First sentence of each attribute in a numpydoc ``Attributes`` section."""
    out, current = {}, []
    for line in (cls.__doc__ or "").splitlines():
        m = re.match(r"^    ([\w, ]+) : (.*)$", line)
        if m:
            current = [n.strip() for n in m.group(1).split(",")]
            for n in current:
                out[n] = m.group(2).strip()
        elif line.startswith("        ") and current:
            for n in current:
                out[n] += " " + line.strip()
        else:
            current = []
    return {k: v.replace("%", "%%") for k, v in out.items()}


def _weights(text: str) -> dict[str, float]:
    try:
        pairs = [item.split("=") for item in text.split(",") if item]
        return {k.strip(): float(v) for k, v in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected name=weight,name=weight, got {text!r}") from None


def _or_none(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null", "off") else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def _add_field(group, f, helptext: str) -> None:
    opt = "--" + f.name.replace("_", "-")
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    kw = dict(dest=f.name, default=argparse.SUPPRESS, help=helptext)
    if isinstance(default, bool):
        group.add_argument(opt, action=argparse.BooleanOptionalAction, **kw)
    elif isinstance(default, tuple):
        group.add_argument(opt, nargs=len(default), type=float, metavar=("LO", "HI")[: len(default)], **kw)
    elif isinstance(default, dict):
        group.add_argument(opt, type=_weights, metavar="NAME=W,...", **kw)
    elif f.name in _NONE_OK:
        group.add_argument(opt, type=_or_none(_NONE_OK[f.name]), metavar="X|none", **kw)
    elif f.name == "tracks_file":
        group.add_argument("--tracks", opt, metavar="FILE", **kw)
    elif f.name == "track_ids":
        group.add_argument(opt, nargs="+", type=int, metavar="ID", **kw)
    elif isinstance(default, (int, float)):
        group.add_argument(opt, type=type(default), metavar="X", **kw)
    else:
        group.add_argument(opt, choices=_CHOICES.get(f.name), **kw)


def add_parser(subparsers) -> None:
    from samem.synthetic.params import PRESETS, ImagingParams, MotionParams, ParticleParams, SynthParams

    p = subparsers.add_parser(
        "synth",
        help="render a synthetic LPTEM video with ground truth (HDF5 or DAVIS folder)",
        description="Render a synthetic LPTEM video with exact ground truth. Options override the "
        "preset or recipe; every physical parameter has one.",
    )
    p.add_argument("out", type=Path, help="output .h5 file, or dataset root for --format folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help=f"liquid thickness preset: {', '.join(PRESETS)} (default: medium)")
    src.add_argument("--recipe", help="shipped recipe name or YAML path (see synthetic/)")
    p.add_argument("--frames", type=int, default=argparse.SUPPRESS, help="number of frames")
    p.add_argument("--size", type=int, default=argparse.SUPPRESS, help="frame height and width (px)")
    p.add_argument(
        "--particles", dest="n_particles", type=int, default=argparse.SUPPRESS, help="number of particles"
    )
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="random seed")
    p.add_argument("--format", choices=("h5", "folder"), default="h5", help="output format")
    p.add_argument("--name", default=None, help="video name inside a --format folder dataset")
    p.add_argument("--workers", type=int, default=None, help="rendering threads (default: CPU cores, max 4)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    top = p.add_argument_group("video")
    docs = _docs(SynthParams)
    for f in dataclasses.fields(SynthParams):
        if f.name not in _SPECIAL and f.name not in ("particles", "motion", "imaging"):
            _add_field(top, f, docs.get(f.name, ""))
    for title, cls in (("particles", ParticleParams), ("motion", MotionParams), ("imaging", ImagingParams)):
        g = p.add_argument_group(title)
        docs = _docs(cls)
        for f in dataclasses.fields(cls):
            if f.name not in _SPECIAL:
                _add_field(g, f, docs.get(f.name, ""))
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict:
    from samem.synthetic.params import _FLAT

    given = {k: v for k, v in vars(args).items() if k in _FLAT and k != "name"}
    return given


def summary(video_params, particles, snr: np.ndarray, out: Path, seconds: float) -> str:
    """One screen of text describing a rendered video."""
    p = video_params
    lines = [
        f"samem synth: {p.frames} frames of {p.size}x{p.size} px ({p.imaging.dtype}) -> {out}",
        f"  recipe {p.name}, seed {p.seed}, {p.pixel_size_nm:g} nm/px, {p.frame_interval_s:g} s/frame, "
        f"liquid {p.imaging.thickness_nm:g} nm, dose {p.imaging.dose_e_A2:g} e-/A^2/frame",
        f"  {'id':>3} {'shape':<8}{'size nm':>8} {'motion':<10}{'D nm2/s':>10}{'alpha':>7}  contrast",
    ]
    shown = 20  # keep the summary on one screen
    for r in particles.head(shown).itertuples():
        lines.append(
            f"  {r.particle:>3} {r.shape:<8}{r.size_nm:>8.1f} {r.motion:<10}{r.D_nm2_s:>10.1f}"
            f"{r.alpha:>7.2f}  {r.contrast}"
        )
    if len(particles) > shown:
        lines.append(f"  ... and {len(particles) - shown} more particles (see /truth/particles)")
    finite = snr[np.isfinite(snr)]
    if finite.size:
        declared = f" (recipe range {p.snr_range[0]:g}-{p.snr_range[1]:g})" if p.snr_range else ""
        lines.append(
            f"  SNR mean {finite.mean():.2f}, range {finite.min():.2f}-{finite.max():.2f}{declared}; "
            f"{finite.size}/{snr.size} frames with a particle fully inside"
        )
    else:
        lines.append("  SNR: no particle fully inside any frame")
    m = p.motion
    if m.tracks_file is not None and "source_track" in particles:
        lines.append(
            f"  tracks from {m.tracks_file} ({m.tracks_pixel_size_nm:g} nm/px, "
            f"{m.tracks_frame_interval_s:g} s/frame; placement {m.tracks_place}): "
            f"source ids {particles['source_track'].tolist()[:20]}"
        )
    lines.append(f"  {p.frames / max(seconds, 1e-9):.1f} frames/s ({seconds:.1f} s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from samem.synthetic import SynthParams, read_truth, write_folder, write_h5

    overrides = _overrides(args)
    if overrides.get("track_ids") is not None and "n_particles" not in overrides:
        overrides["n_particles"] = len(overrides["track_ids"])
    if args.recipe:
        params = SynthParams.from_recipe(args.recipe, **overrides)
    else:
        params = SynthParams.from_preset(args.preset or "medium", **overrides)
    params.validate()
    if params.motion.tracks_file is not None:
        params = _with_tracks(params, overrides).validate()
    if args.workers is not None and args.workers < 1:
        raise SamemError(f"--workers must be >= 1, got {args.workers}")
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    t0 = time.perf_counter()
    if args.format == "folder":
        written = write_folder(params, args.out, args.name, workers=args.workers, progress=progress)
        truth = read_truth(args.out, name=written.name)
    else:
        written = write_h5(params, args.out, workers=args.workers, progress=progress)
        truth = read_truth(written)
    print(summary(params, truth.particles, truth.snr, written, time.perf_counter() - t0))
    return 0


def _with_tracks(params, given: dict):
    """Fill in what a ``--tracks`` video leaves open (see module docstring) from the track file."""
    from samem.synthetic.tracks import plan

    m = params.motion
    over: dict = {}
    if "stage_drift_nm_s" not in given:
        over["stage_drift_nm_s"] = (0.0, 0.0)
    if "stage_jitter_nm2_s" not in given:
        over["stage_jitter_nm2_s"] = 0.0
    info = plan(params)
    over["tracks_pixel_size_nm"] = info["pixel_size_nm"]
    over["tracks_frame_interval_s"] = info["frame_interval_s"]
    covered = info["covered"]
    if m.track_ids is None and "n_particles" not in given:
        over["n_particles"] = min(params.particles.n_particles, len(covered))
    if "frames" not in given:
        if m.track_ids is not None:
            known = [covered[i] for i in m.track_ids if i in covered.index]
            over["frames"] = int(min(known)) if known else params.frames
        else:
            k = over.get("n_particles", params.particles.n_particles)
            if 1 <= k <= len(covered):  # the k-th longest track: the first k that long fill the video
                over["frames"] = int(np.sort(covered.to_numpy())[::-1][k - 1])
    return params.replace(**over)
