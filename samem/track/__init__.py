"""Streaming SAM 2 tracking: one frame at a time, forever, with bounded memory.

``StreamingTracker`` (also ``samem.StreamingTracker``) is the entry point; ``core`` holds the
per-step propagation that training reuses, ``preprocess`` the frame normalisation shared with
training, ``memory`` the bounded per-object memory bank, ``roi`` the window geometry.
"""

from samem.track.options import TrackerOptions
from samem.track.tracker import ObjectResult, StreamingTracker

__all__ = ["ObjectResult", "StreamingTracker", "TrackerOptions"]
