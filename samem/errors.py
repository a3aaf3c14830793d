"""Errors a user can cause and fix (bad parameter, missing file, wrong format).

The command line prints them as one line, ``samem: error: <message>``, and exits with
status 2; they never surface as a traceback. Everything else is a bug and is allowed to.
"""


class SamemError(Exception):
    """A problem with the user's input, named clearly enough to fix it."""
