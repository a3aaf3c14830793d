"""The ``samem`` command line: one module per subcommand, each with ``add_parser`` and ``run``."""


def add_tracker_argument(parser) -> None:
    """``--tracker NAME=VALUE`` (repeatable): tracker options, docs/tracker.md."""
    parser.add_argument(
        "--tracker",
        action="append",
        metavar="NAME=VALUE",
        help="tracker option (docs/tracker.md), e.g. --tracker smooth_frames=1; repeatable",
    )


def apply_tracker_arguments(settings, items: list[str] | None):
    """The service settings with ``--tracker`` items merged over ``model.tracker`` (checked)."""
    from samem.stream.settings import with_tracker_options
    from samem.track.options import parse_options

    return with_tracker_options(settings, parse_options(items))


def frame_progress(desc: str):
    """A ``progress`` callable for long loops over frames: a tqdm bar on a terminal, silent otherwise."""
    import sys

    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, unit="frame", disable=not sys.stderr.isatty())
