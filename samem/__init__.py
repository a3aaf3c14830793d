"""samem: real-time SAM 2 tracking of nanoparticles in liquid-phase TEM videos.

Public entry points are imported lazily so that ``import samem`` (and light commands
such as ``samem synth``) do not pay for importing torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_model": ("samem.model", "load_model"),
    "StreamingTracker": ("samem.track", "StreamingTracker"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'samem' has no attribute {name!r}")
