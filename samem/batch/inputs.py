"""Which videos a batch analyses, where each one's outputs go and how it is prompted.

Rules (documented in docs/batch.md):

- An input is a video file, a folder or a glob pattern (``"runs/*.dm4"``, for shells or
  schedulers that pass patterns unexpanded).
- A file is a video when :func:`samem.io.readers.open_video` has a reader for its suffix.
- A folder holding only images (JPEG/PNG/TIFF) is one video: a sequence of frames. Any other
  folder contributes the video files directly inside it (not recursively), TIFF files then
  counting as stacks; hidden files and ``*.boxes.json`` are ignored.
- Outputs of a video go to ``OUT/<video name without extension>/``; two inputs with the
  same name are refused before anything runs.
- Prompts: ``<video>.boxes.json`` next to the video (``movie.boxes.json`` or
  ``movie.dm4.boxes.json``; for a frame folder ``<folder>.boxes.json`` beside it), else
  auto-prompt when asked for, else the video fails with a message saying so.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samem.errors import SamemError
from samem.io.readers import IMAGE_SUFFIXES, supported_suffixes

BOXES_SUFFIX = ".boxes.json"


@dataclass(frozen=True)
class VideoJob:
    """One video of a batch and everything a worker needs to analyse it.

    Attributes
    ----------
    video : Path
        Absolute path of the video file or frame folder.
    name : str
        Output folder name: the video name without extension.
    out_dir : Path
        ``OUT/<name>``, absolute; it exists only once the video is finished.
    boxes : Path or None
        Boxes file used to prompt the tracker, when one is next to the video.
    auto_prompt : bool
        Prompt with the automatic detector (used when ``boxes`` is None).
    options : dict
        Further keyword options of the per-video analysis (model, calibration overrides ...).
    """

    video: Path
    name: str
    out_dir: Path
    boxes: Path | None
    auto_prompt: bool
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str:
        """How the video is prompted, for the summary: a boxes file name, "auto" or "none"."""
        if self.boxes is not None:
            return self.boxes.name
        return "auto" if self.auto_prompt else "none"


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in supported_suffixes() and not path.name.startswith(".")


def _folder_videos(folder: Path) -> list[Path]:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    media = [p for p in entries if _is_video_file(p) or _is_image(p)]
    if (
        media
        and all(_is_image(p) for p in media)
        and not any(p.suffix.lower() in (".tif", ".tiff") for p in media)
    ):
        return [folder]  # JPEG/PNG frames: the folder is one video
    if media and all(p.suffix.lower() in (".tif", ".tiff") for p in media) and len(media) > 1:
        # only TIFFs: frames if they are single images, stacks otherwise
        return [folder] if _single_page(media[0]) else sorted(media, key=_natural_key)
    return sorted((p for p in media if _is_video_file(p)), key=_natural_key)


def _single_page(path: Path) -> bool:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            shape = tif.series[0].shape
    except (tifffile.TiffFileError, OSError, IndexError, ValueError):
        return False
    spatial = [s for s in shape if s not in (3, 4)] if len(shape) == 3 else list(shape)
    return len(spatial) <= 2


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Turn command-line inputs into a sorted list of distinct videos (absolute paths).

    Raises
    ------
    SamemError
        An input that does not exist and matches nothing, an explicitly named file of an
        unsupported type, or no video at all.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            videos = _folder_videos(p)
            if not videos:
                raise SamemError(
                    f"{p}: folder holds no video ({', '.join(supported_suffixes())}) and no images"
                )
            found.extend(videos)
        elif p.is_file():
            if not (_is_video_file(p) or _is_image(p)):
                raise SamemError(
                    f"{p}: unsupported file type {p.suffix or '(no suffix)'!r}; "
                    f"supported: {', '.join(supported_suffixes())} or a folder of images"
                )
            found.append(p)
        elif glob.has_magic(str(item)):
            matches = [Path(m) for m in sorted(glob.glob(str(p)))]
            videos = [m for m in matches if _is_video_file(m) or (m.is_dir() and _folder_videos(m) == [m])]
            if not videos:
                raise SamemError(f"{item}: the pattern matches no video")
            found.extend(videos)
        else:
            raise SamemError(f"{p}: no such file or folder")
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    if not unique:
        raise SamemError("no input videos")
    return list(unique)


def video_name(video: Path) -> str:
    """Output folder name of a video: its name without extension (a folder keeps its name)."""
    return video.name if video.is_dir() else video.stem


def boxes_file(video: Path) -> Path | None:
    """The boxes file next to ``video`` (``<stem>.boxes.json`` or ``<name>.boxes.json``), if any."""
    candidates = [video.parent / f"{video.name}{BOXES_SUFFIX}"]
    if not video.is_dir():
        candidates.insert(0, video.parent / f"{video.stem}{BOXES_SUFFIX}")
    for c in candidates:
        if c.is_file():
            return c
    return None


def plan_jobs(
    inputs: list[str | Path],
    out: str | Path,
    auto_prompt: bool = False,
    options: dict[str, Any] | None = None,
) -> list[VideoJob]:
    """One :class:`VideoJob` per input video, in a stable (natural sort) order.

    Parameters
    ----------
    inputs : list of str or Path
        Files, folders or glob patterns.
    out : str or Path
        Output root; each video gets ``out/<name>/``.
    auto_prompt : bool
        Prompt videos without a boxes file automatically.
    options : dict, optional
        Per-video analysis options, shared by every job.

    Raises
    ------
    SamemError
        Bad inputs (see :func:`expand_inputs`), or two videos with the same output name.
    """
    videos = sorted(expand_inputs(inputs), key=_natural_key)
    out_root = Path(out).expanduser().resolve()
    by_name: dict[str, list[Path]] = {}
    for v in videos:
        by_name.setdefault(video_name(v), []).append(v)
    clashes = {n: vs for n, vs in by_name.items() if len(vs) > 1}
    if clashes:
        detail = "; ".join(f"{n}: {', '.join(str(v) for v in vs)}" for n, vs in sorted(clashes.items()))
        raise SamemError(
            f"videos with the same name would share an output folder ({detail}); rename or batch separately"
        )
    inside = [v for v in videos if v == out_root or out_root in v.parents]
    if inside:
        raise SamemError(f"{inside[0]}: input lies inside the output folder {out_root}")
    return [
        VideoJob(
            video=v,
            name=video_name(v),
            out_dir=out_root / video_name(v),
            boxes=boxes_file(v),
            auto_prompt=auto_prompt,
            options=dict(options or {}),
        )
        for v in videos
    ]
