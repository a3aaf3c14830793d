"""``samem plot``: figures of trajectories and statistics from a results or synthetic HDF5 file.

Reads ``/tracks`` (results of ``samem analyze`` / ``samem serve``) or, for a synthetic
video, ``/truth/tracks``; units from the root attributes ``pixel_size_nm`` and
``frame_interval_s`` (or those of ``/truth`` or ``/frames``). Writes trajectories, MSD,
van Hove and VACF figures as PNG and SVG into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from samem.errors import SamemError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plot",
        help="plot trajectories, MSD, van Hove and VACF from a results (or synthetic) HDF5 file",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument(
        "results", type=Path, help="RESULTS.h5 (with /tracks) or a synthetic video (with /truth/tracks)"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder for the figures")
    p.add_argument("--config", default=None, help="YAML overriding configs/stats.yaml (lags, fit range, ...)")
    p.add_argument("--truth", action="store_true", help="plot /truth/tracks even when /tracks exists")
    p.add_argument(
        "--format",
        nargs="+",
        default=["png", "svg"],
        choices=["png", "svg", "pdf"],
        help="figure formats (default: png svg)",
    )
    p.set_defaults(func=run)
    return p


def _find_unit(f, key):
    for obj in (f, f.get("truth"), f.get("frames")):
        if obj is not None and key in obj.attrs:
            return float(obj.attrs[key])
    raise SamemError(f"{f.filename}: no '{key}' attribute on /, /truth or /frames")


def load_tracks(path: Path, truth: bool = False):
    """Trajectory table (with units in attrs) and frame shape from a results or synthetic file."""

    from samem.io.h5 import open_h5
    from samem.io.table import read_table

    with open_h5(path) as f:
        name = "truth/tracks" if truth or "tracks" not in f else "tracks"
        if name not in f:
            raise SamemError(f"{path}: no /tracks or /truth/tracks table")
        try:
            df = read_table(f[name])
        except (TypeError, ValueError, AttributeError) as exc:
            raise SamemError(f"{path}: /{name} is not a table ({exc})") from None
        df.attrs["pixel_size_nm"] = _find_unit(f, "pixel_size_nm")
        df.attrs["frame_interval_s"] = _find_unit(f, "frame_interval_s")
        shape = tuple(f["frames"].shape[1:3]) if "frames" in f and f["frames"].ndim == 3 else None
    return df, shape


def _run(args) -> int:
    from samem.stats.plots import plot_all

    df, shape = load_tracks(args.results, args.truth)
    if args.out.exists() and not args.out.is_dir():
        raise SamemError(f"--out {args.out} exists and is not a folder")
    paths = plot_all(df, args.out, config=args.config, frame_shape=shape, formats=tuple(args.format))
    for p in paths:
        print(p)
    return 0


def run(args) -> int:
    from samem.cli.userlog import one_line_errors

    with one_line_errors(getattr(args, "verbose", 0)):
        return _run(args)
