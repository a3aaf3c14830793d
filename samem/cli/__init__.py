"""The ``samem`` command line: one module per subcommand, each with ``add_parser`` and ``run``."""


def frame_progress(desc: str):
    """A ``progress`` callable for long loops over frames: a tqdm bar on a terminal, silent otherwise."""
    import sys

    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, unit="frame", disable=not sys.stderr.isatty())
