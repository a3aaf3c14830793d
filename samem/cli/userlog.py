"""Keep a user error to one line: hold log lines and warnings while a command runs.

``samem: error: ...`` is the one line a user mistake prints (exit status 2). Warnings logged
before the mistake was found (an uncalibrated input, a random-weights model, ...) would print
above it and bury it. :func:`one_line_errors` holds WARNING lines and Python warnings that
would go to the terminal until the command says its setup is over (:func:`release`) or ends;
on a :class:`samem.errors.SamemError` they are dropped, otherwise printed. With ``-v`` nothing
is held. Handlers other than the plain stderr one that ``samem`` installs (tests' capture
handlers, a user's own) are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from samem.errors import SamemError


class _Hold(logging.Handler):
    def __init__(self, targets: list[logging.Handler]):
        super().__init__(logging.NOTSET)
        self.targets = targets
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_active: list[_Hold] = []


def _restore(hold: _Hold, emit: bool) -> None:
    root = logging.getLogger()
    if hold in root.handlers:
        root.removeHandler(hold)
        for h in hold.targets:
            root.addHandler(h)
    if emit:
        for record in hold.records:
            for h in hold.targets:
                if record.levelno >= h.level:
                    h.handle(record)
    hold.records.clear()
    if hold in _active:
        _active.remove(hold)
        logging.captureWarnings(False)


def release() -> None:
    """Print what was held and stop holding (call once a command's setup has succeeded)."""
    for hold in list(_active):
        _restore(hold, emit=True)


@contextlib.contextmanager
def one_line_errors(verbose: int = 0) -> Iterator[None]:
    """Hold terminal log lines and warnings; drop them if a :class:`SamemError` ends the block."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR" if not verbose else "WARNING")
    root = logging.getLogger()
    targets = [
        h
        for h in root.handlers
        if type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.__stderr__)
    ]
    if verbose or not targets:
        yield
        return
    hold = _Hold(targets)
    for h in targets:
        root.removeHandler(h)
    root.addHandler(hold)
    _active.append(hold)
    logging.captureWarnings(True)
    try:
        yield
    except SamemError:
        _restore(hold, emit=False)
        raise
    except BaseException:
        _restore(hold, emit=True)
        raise
    _restore(hold, emit=True)
