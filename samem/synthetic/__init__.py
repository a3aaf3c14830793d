"""Physics-based synthetic LPTEM videos with exact ground truth.

Public API::

    params = SynthParams.from_preset("medium", frames=50, size=512)
    video = generate(params)                 # frames, labels, tracks, snr, particles
    write_h5(params, "out.h5")               # streams frame by frame, atomic
    truth = read_truth("out.h5")             # tracks, D and alpha per particle, snr
    for frame, labels, rows in iter_frames(params): ...
    for clip in ClipStream("train", clip_len=8, size=512, seed=0): ...

:mod:`samem.synthetic.motion` holds exact trajectory samplers usable on their own.
"""

from samem.synthetic import motion
from samem.synthetic.clips import Clip, ClipStream
from samem.synthetic.params import ImagingParams, MotionParams, ParticleParams, SynthParams
from samem.synthetic.render import TRACK_COLUMNS, SynthVideo, frame_snr, generate, iter_frames
from samem.synthetic.writers import Truth, read_truth, write_folder, write_h5

__all__ = [
    "Clip",
    "ClipStream",
    "ImagingParams",
    "MotionParams",
    "ParticleParams",
    "SynthParams",
    "SynthVideo",
    "TRACK_COLUMNS",
    "Truth",
    "frame_snr",
    "generate",
    "iter_frames",
    "motion",
    "read_truth",
    "write_folder",
    "write_h5",
]
