"""Physics-based synthetic LPTEM videos with exact ground truth.

Public API::

    params = SynthParams.from_preset("medium", frames=50, size=512)
    video = generate(params)                 # frames, labels, tracks, snr, particles
    write_h5(params, "out.h5")               # streams frame by frame, atomic
    truth = read_truth("out.h5")             # tracks, D and alpha per particle, snr
    for frame, labels, rows in iter_frames(params): ...
    for clip in ClipStream("train", clip_len=8, size=512, seed=0): ...

:mod:`samem.synthetic.motion` holds exact trajectory samplers usable on their own.
Names are imported on first use, so ``samem --help`` does not pay for OpenCV, h5py and pandas.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Clip": "clips",
    "ClipStream": "clips",
    "ImagingParams": "params",
    "MotionParams": "params",
    "ParticleParams": "params",
    "SynthParams": "params",
    "SynthVideo": "render",
    "TRACK_COLUMNS": "render",
    "frame_snr": "render",
    "generate": "render",
    "iter_frames": "render",
    "Truth": "writers",
    "read_truth": "writers",
    "write_folder": "writers",
    "write_h5": "writers",
}

__all__ = sorted([*_LAZY, "motion"])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"samem.synthetic.{_LAZY[name]}"), name)
    if name == "motion":
        return importlib.import_module("samem.synthetic.motion")
    raise AttributeError(f"module 'samem.synthetic' has no attribute {name!r}")
