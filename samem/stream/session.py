"""One tracking session: tracker -> trajectories -> live statistics, one frame at a time.

``samem serve`` (frames from the network) and ``samem analyze`` (frames from a file) both
run :meth:`Session.process` per frame; what differs is only where frames come from and
where results go (sinks: PUB publisher, HDF5 recorder, CSV/plots at the end).

Prompts reach the tracker three ways: a boxes file (applied on its frame, or the first frame
after it), control commands (applied on the next processed frame) and the auto-prompt
detector (on the first ``autoprompt.frames`` frames; and, when
``autoprompt.new_objects_every`` > 0, every that many frames for particles that entered later,
whichever way tracking started). Until the first
prompt, frames are recorded with empty labels.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from samem.errors import SamemError
from samem.stats.live import LiveStats
from samem.stats.summary import Statistics, load_config
from samem.stats.trajectories import COLUMNS, TrajectoryBuilder, frame_rows
from samem.stream import autoprompt
from samem.stream.feedback import FeedbackAdvisor
from samem.stream.settings import ServeSettings

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]


@dataclass
class FrameResult:
    """What one processed frame produced.

    Attributes
    ----------
    seq : int
        Frame number (ingest seq or file index).
    timestamp : float
        Acquisition time, s.
    objects : list of dict
        Per object: ``id``, ``x``, ``y`` (px), ``area`` (px), ``score``, ``present``.
    rows : DataFrame
        This frame's ``/tracks`` rows (:data:`samem.io.recorder.TRACK_COLUMNS`).
    labels : ndarray
        (H, W) uint16, 0 background, value = object id.
    processing_ms : float
        Time spent in :meth:`Session.process`, ms.
    feedback : dict
        ``{"seq", "snr", "events"}`` (:class:`samem.stream.feedback.FeedbackAdvisor`).
    stats : dict or None
        :meth:`Session.summary` every ``stats.every_frames`` frames (once there are tracks).
    prompted : list of int
        Object ids prompted on this frame.
    """

    seq: int
    timestamp: float
    objects: list[dict[str, Any]]
    rows: pd.DataFrame
    labels: np.ndarray
    processing_ms: float
    feedback: dict[str, Any]
    stats: dict[str, Any] | None = None
    prompted: list[int] = field(default_factory=list)

    def frame_message(self) -> dict[str, Any]:
        """Payload of the ``frame`` topic."""
        return {
            "seq": self.seq,
            "timestamp": self.timestamp,
            "objects": self.objects,
            "processing_ms": self.processing_ms,
        }


def check_boxes_file_limits(boxes: tuple[int, Mapping[int, Box]] | None, settings: ServeSettings) -> None:
    """Raise :class:`SamemError` if a boxes file holds more boxes than ``prompts.max_per_prompt``
    or ``prompts.max_objects`` allow (checked before a model is loaded)."""
    if boxes is None:
        return
    limit = min(settings.prompts.max_per_prompt, settings.prompts.max_objects)
    if len(boxes[1]) > limit:
        raise SamemError(
            f"the boxes file holds {len(boxes[1])} boxes; at most {limit} are allowed "
            "(settings prompts.max_per_prompt and prompts.max_objects)"
        )


class Session:
    """Track one series of frames.

    Parameters
    ----------
    tracker : samem.track.StreamingTracker
        Fresh tracker (``start``/``step``/``remove``/``reset``).
    frame_shape : tuple of int
        (H, W), pixels.
    pixel_size_nm, frame_interval_s : float or None
        nm/px and s; None means unknown: statistics are then in px and frames.
    settings : mapping
        Full service settings (``configs/serve.yaml`` layout; sections ``autoprompt``,
        ``stats``, ``feedback`` are read).
    boxes : tuple (frame, {id: box}), optional
        Box prompts from a file.
    auto_prompt : bool
        Run the detector on the first frames. Independently, ``autoprompt.new_objects_every``
        > 0 adds particles that appear later, however tracking was started.
    keep_table : bool
        Keep the whole trajectory table in memory (offline; a live service relies on the
        recorder instead so that memory does not grow with time).
    """

    def __init__(
        self,
        tracker,
        frame_shape: tuple[int, int],
        pixel_size_nm: float | None,
        frame_interval_s: float | None,
        settings: ServeSettings,
        boxes: tuple[int, Mapping[int, Box]] | None = None,
        auto_prompt: bool = False,
        keep_table: bool = False,
    ):
        self.tracker = tracker
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.calibrated = pixel_size_nm is not None and frame_interval_s is not None
        self.pixel_size_nm = pixel_size_nm
        self.frame_interval_s = frame_interval_s
        px, dt = (pixel_size_nm, frame_interval_s) if self.calibrated else (1.0, 1.0)
        if not self.calibrated:
            log.warning("pixel size or frame interval unknown: statistics are in pixels and frames")
        self.max_per_prompt = settings.prompts.max_per_prompt
        self.max_objects = settings.prompts.max_objects
        if boxes is not None:
            self.check_prompt_size(len(boxes[1]), "the boxes file")
        self.stats_every = settings.stats.every_frames
        self.stats_cfg = load_config(settings.stats.config)
        cut = self.stats_cfg.max_sigma_nm  # in px (px is 1 "nm" when uncalibrated)
        self._max_sigma_px = math.inf if cut is None else cut / px
        self.auto_cfg = autoprompt.settings(settings.autoprompt)
        self.live = LiveStats(pixel_size_nm=px, frame_interval_s=dt, max_lagtime=self.stats_cfg.max_lag)
        self.builder = TrajectoryBuilder(px, dt) if keep_table else None
        self.feedback = FeedbackAdvisor(settings.feedback, self.frame_shape, pixel_size_nm)
        self._file_boxes = boxes
        self._auto = bool(auto_prompt)
        self._auto_frames: deque[np.ndarray] = deque(maxlen=max(1, self.auto_cfg.frames))
        self._weak: list = []  # faint candidates of the first detection, until the next frames confirm them
        self._pending: dict[int, Box] = {}
        self._ended: set[int] = set()  # ids of tracks removed or reset: never reused in this series
        self._started = False
        # last frame's {id: (centroid or None, bbox or None)}; masks are not kept (full-frame arrays)
        self._last: dict[int, tuple] = {}
        self._next_id = 1
        self._last_seq: int | None = None
        self.frames_processed = 0
        self._times: deque[float] = deque(maxlen=50)
        self.last_statistics: Statistics | None = None  # of the last summary (ensemble MSD for the view)

    # ------------------------------------------------------------------ prompts
    def check_boxes(self, boxes: Mapping[int, Box]) -> None:
        """Raise :class:`SamemError` unless every box lies inside the frame (px)."""
        h, w = self.frame_shape
        for oid, (x0, y0, x1, y1) in boxes.items():
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise SamemError(f"box {[x0, y0, x1, y1]} of object {oid} is outside the {w} x {h} frame")

    def check_prompt_size(self, n_boxes: int, what: str = "a prompt") -> None:
        """Raise :class:`SamemError` if ``n_boxes`` exceed ``prompts.max_per_prompt`` or ``max_objects``."""
        if n_boxes > self.max_per_prompt:
            raise SamemError(
                f"{what} holds {n_boxes} boxes; at most {self.max_per_prompt} are allowed per prompt "
                "(setting prompts.max_per_prompt)"
            )
        if n_boxes > self.max_objects:
            raise SamemError(
                f"{what} holds {n_boxes} boxes; at most {self.max_objects} objects are tracked at once "
                "(setting prompts.max_objects)"
            )

    @property
    def room(self) -> int:
        """How many more objects may be added (``prompts.max_objects`` less tracked and pending)."""
        return self.max_objects - len(set(self.object_ids) | set(self._pending))

    def prompt(self, boxes: Mapping[int, Box]) -> None:
        """Add or correct objects on the next processed frame (boxes in px).

        An id whose track was removed or reset in this series is refused: its new particle
        would be joined to the old trajectory and its statistics. More boxes than
        ``prompts.max_per_prompt``, or more objects in all than ``prompts.max_objects``, are
        refused (nothing is applied).
        """
        self.check_prompt_size(len(boxes))
        current = set(self.object_ids) | set(self._pending)
        total = len(current | {int(k) for k in boxes})
        if total > self.max_objects:
            raise SamemError(
                f"this prompt would make {total} objects; at most {self.max_objects} are tracked at once "
                f"(setting prompts.max_objects; {len(current)} tracked or pending): remove some first"
            )
        self.check_boxes(boxes)
        reused = sorted(int(k) for k in boxes if int(k) in self._ended)
        if reused:
            raise SamemError(
                f"object id(s) {reused} belonged to tracks that were removed or reset in this series; "
                f"use new ids (next free: {self._next_id})"
            )
        self._pending.update({int(k): tuple(map(float, v)) for k, v in boxes.items()})
        self._next_id = max(self._next_id, max(self._pending) + 1)

    def remove(self, ids: list[int]) -> None:
        """Stop tracking objects; unknown ids are a :class:`SamemError` and nothing is removed."""
        tracked = set(self.object_ids)
        unknown = [i for i in ids if i not in tracked and i not in self._pending]
        if unknown:
            raise SamemError(f"unknown object id(s) {unknown}; tracked: {sorted(tracked)}")
        for i in ids:
            self._pending.pop(i, None)
            if i in tracked:
                self.tracker.remove(i)
                self._last.pop(i, None)
                self._ended.add(i)

    def reset(self) -> None:
        """Forget every object (tracks already recorded stay); auto-prompt runs again if enabled."""
        self._ended.update(self.object_ids)
        self.tracker.reset()
        self._pending.clear()
        self._last.clear()
        self._started = False
        self._auto_frames.clear()
        self._weak = []

    @property
    def last_seq(self) -> int | None:
        """Frame number of the last processed frame."""
        return self._last_seq

    @property
    def next_object_id(self) -> int:
        """Smallest id a new prompt may use that no object of this series has had."""
        return self._next_id

    @property
    def object_ids(self) -> list[int]:
        """Ids of the objects being tracked."""
        return sorted(self.tracker.object_ids) if self._started else []

    def _file_prompts(self, seq: int) -> None:
        if self._file_boxes is not None and seq >= self._file_boxes[0]:
            _, boxes = self._file_boxes
            self._file_boxes = None
            self.prompt(boxes)

    def _auto_prompts(self, frame: np.ndarray) -> None:
        cfg = self.auto_cfg
        if self._auto and not self._started and not self._pending:
            self._auto_frames.append(np.asarray(frame, dtype=np.float32))
            if len(self._auto_frames) < self._auto_frames.maxlen:
                return
            strong, faint = autoprompt.detect_with_faint(list(self._auto_frames), cfg)
            ok = autoprompt.confirmed(strong + faint, self._weak, float(cfg.confirm_gate))
            found, self._weak = strong + [d for d in ok if d not in strong], faint
            self._auto_frames.clear()
            if not found:
                log.info("auto-prompt found no particle; trying again on the next frames")
                return
            limit = min(self.max_per_prompt, self.room)
            if len(found) > limit:
                log.warning(
                    "auto-prompt found %d particles; tracking the %d strongest (prompts limits)",
                    len(found),
                    limit,
                )
                found = found[:limit]
            self.prompt({self._next_id + i: d.box for i, d in enumerate(found)})
            log.info("auto-prompt: %d particles", len(found))
            return
        every = cfg.new_objects_every
        confirming = self._started and bool(self._weak)
        if self._started and (every > 0 or confirming):
            # newcomers and faint candidates are looked for on the mean of the last `frames`
            # frames, as the first detection is (each box follows its particle to this frame)
            self._auto_frames.append(np.asarray(frame, dtype=np.float32))
        newcomers = self._started and every > 0 and self.frames_processed % every == 0
        confirm_now = confirming and len(self._auto_frames) == self._auto_frames.maxlen
        if newcomers or confirm_now:
            # tracked objects, present or not, at their last known place: a particle reported
            # absent on this frame (unconfirmed by the tracker's position check) is not new
            tracked = {i: c for i, (c, _) in self._last.items() if c is not None}
            boxes = [b for _, b in self._last.values() if b is not None]
            if confirm_now:  # once: the frames after the first detection confirm its faint candidates
                found = autoprompt.confirmed(
                    sum(autoprompt.detect_with_faint(list(self._auto_frames), cfg), []),
                    self._weak,
                    float(cfg.confirm_gate),
                )
                self._weak = []
            else:
                found = autoprompt.detect(list(self._auto_frames), cfg)
            new = autoprompt.new_detections(found, tracked, boxes, cfg.min_distance_px)
            room = min(cfg.max_objects - len(self.object_ids), self.room, self.max_per_prompt)
            new = new[: max(room, 0)]
            if new:
                self.prompt({self._next_id + i: d.box for i, d in enumerate(new)})
                log.info("auto-prompt: %d new particles", len(new))

    # ------------------------------------------------------------------ per frame
    def process(self, seq: int, frame: np.ndarray, timestamp: float = math.nan) -> FrameResult:
        """Track one frame and update trajectories and statistics.

        Parameters
        ----------
        seq : int
            Frame number, increasing (gaps allowed: dropped frames).
        frame : ndarray
            (H, W) frame.
        timestamp : float
            Acquisition time, s.
        """
        t0 = time.perf_counter()
        if frame.shape != self.frame_shape:
            raise SamemError(f"frame {frame.shape} differs from the session's {self.frame_shape}")
        if self._last_seq is not None and seq <= self._last_seq:
            raise SamemError(f"frame numbers must increase: {seq} after {self._last_seq}")
        self._last_seq = seq
        self._file_prompts(seq)
        self._auto_prompts(frame)
        prompts, self._pending = self._pending, {}
        results: dict = {}
        if prompts and not self._started:
            results = self.tracker.start(frame, prompts)
            self._started = True
        elif self._started:
            results = self.tracker.step(frame, prompts or None)
        self._last = {  # last known centroid and box of every object (kept while it is absent)
            i: (r.centroid, r.bbox) if r.present else self._last.get(i, (None, None))
            for i, r in results.items()
        }
        records, objects, positions, labels = self._tables(seq, results)
        rows = pd.DataFrame(records, columns=COLUMNS)
        if self.builder is not None:
            self.builder.add_rows(seq, records)
        if positions or self.live.n_frames:
            self.live.update(seq, positions, {o["id"]: o["sigma"] for o in objects if o["id"] in positions})
        self.frames_processed += 1
        feedback = self.feedback.on_frame(seq, {o["id"]: o for o in objects}, frame, labels)
        stats = None
        if self.frames_processed % self.stats_every == 0 and self.live.particles:
            stats = self.safe_summary()
        elapsed = time.perf_counter() - t0
        self._times.append(elapsed)
        return FrameResult(
            seq=int(seq),
            timestamp=float(timestamp),
            objects=objects,
            rows=rows,
            labels=labels,
            processing_ms=1000.0 * elapsed,
            feedback=feedback,
            stats=stats,
            prompted=sorted(prompts),
        )

    def _tables(self, seq: int, results: Mapping) -> tuple[list[tuple], list, dict, np.ndarray]:
        labels = np.zeros(self.frame_shape, np.uint16)
        ordered = {oid: results[oid] for oid in sorted(results)}
        records, positions = frame_rows(seq, ordered, self.stats_cfg.exclude_edge, self._max_sigma_px)
        objects = []
        for _, oid, x, y, area, _, _, score, present, edge, sigma in records:
            if present:
                r = results[oid]
                x0, y0, x1, y1 = r.bbox
                window = labels[y0:y1, x0:x1]
                window[r.mask[y0:y1, x0:x1]] = oid
            objects.append(
                dict(id=oid, x=x, y=y, area=int(area), score=score, present=present, edge=edge, sigma=sigma)
            )
        return records, objects, positions, labels

    # ------------------------------------------------------------------ reporting
    @property
    def processing_fps(self) -> float | None:
        """Recent processing rate, frames/s (None before the first frame)."""
        if not self._times:
            return None
        mean = sum(self._times) / len(self._times)
        return 1.0 / mean if mean > 0 else None

    def statistics(self) -> Statistics:
        """Statistics of the tracks so far (nm, s; px and frames when uncalibrated)."""
        return self.live.statistics(self.stats_cfg)

    def summary(self) -> dict[str, Any]:
        """JSON-ready statistics summary (:attr:`samem.stats.summary.Statistics.summary`).

        ``calibrated`` is False when the pixel size or frame interval was unknown and 1 nm/px,
        1 s were used.
        """
        stats = self.statistics()
        self.last_statistics = stats
        return {**stats.summary, "calibrated": self.calibrated}

    def safe_summary(self) -> dict[str, Any]:
        """:meth:`summary`, or ``{"error": reason, "calibrated": ...}`` when it cannot be computed.

        Statistics never cost a frame's tracking results: a failure here is logged at WARNING
        and reported in the summary instead of raised.
        """
        try:
            return self.summary()
        except Exception as exc:  # a statistics bug must not lose the frame (issue 23)
            log.warning("statistics could not be computed: %s: %s", type(exc).__name__, exc)
            return {
                "error": f"statistics could not be computed ({type(exc).__name__}: {str(exc)[:200]})",
                "n_particles": len(self.live.particles),
                "calibrated": self.calibrated,
            }

    def table(self) -> pd.DataFrame:
        """Whole trajectory table (only with ``keep_table``)."""
        if self.builder is None:
            raise RuntimeError("session was created without keep_table")
        return self.builder.table()
