"""``StreamingTracker``: SAM 2 memory propagation one frame at a time, with bounded state.

Per frame: measure the frame's intensity levels (:mod:`samem.track.preprocess`); cut and
normalise one window per object (ROI mode, :mod:`samem.track.roi`) or normalise and resize
the whole frame (full mode); encode all inputs as
one batch; run SAM 2's track step (:mod:`samem.track.core`) for each group of objects whose
memories share a layout, the presence rule gating each object's present/absent decision
(:mod:`samem.track.presence`); paste masks back into frame coordinates, averaged over the last
frames in each object's own frame of reference (:mod:`samem.track.smooth`); prune every
object's memory to what the next frame needs (:mod:`samem.track.memory`).
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import expit, logit

from samem.errors import SamemError
from samem.track import mixed
from samem.track.centroid import local_contrast, weighted_centroid
from samem.track.core import Features, encode_images, share_position_encoding, track_step
from samem.track.edge import edge_centre
from samem.track.matched import MatchedFilter
from samem.track.memory import ObjectMemory
from samem.track.options import TrackerOptions
from samem.track.preprocess import (
    Levels,
    apply_levels,
    denoise,
    denoise_sigma,
    intensity_levels,
    resize_square,
    to_gray,
    to_model_input,
)
from samem.track.presence import HELD_ABSENT_LOGIT, PresenceRule, paired_gate
from samem.track.refine import refine_mask
from samem.track.roi import (
    Geometry,
    Window,
    box_side,
    cut,
    cut_normalized,
    mask_geometry,
    paste,
    shift_mask,
    upsample_logits,
    window_mask_geometry,
    window_side,
)
from samem.track.smooth import MaskSmoother
from samem.track.stack import FrameStack
from samem.track.verify import Verifier


@dataclass(frozen=True)
class ObjectResult:
    """One object on one frame.

    Attributes
    ----------
    mask : np.ndarray
        bool ``(H, W)`` in the input frame's pixels (all False when absent); with
        :attr:`TrackerOptions.smooth_frames` > 1 the object-aligned temporal mean of the mask,
        with :attr:`TrackerOptions.mask_to_centroid` moved onto ``centroid``, and with
        :attr:`TrackerOptions.refine_band_px` > 0 its boundary snapped to the particle's edge.
    score : float
        Probability that the object is visible, ``sigmoid`` of SAM 2's object score. For an
        object absent on its previous frame it is lowered by the hysteresis of
        :attr:`TrackerOptions.reappear_score` and held just below 0.5 while the other
        presence checks refuse (:mod:`samem.track.presence`), so that > 0.5 still means
        present.
    present : bool
        SAM 2 judged the object present (score > 0.5) and its mask is not empty.
    centroid : tuple of float
        ``(x, y)`` (px, pixel indices): the contrast-weighted centroid
        (:attr:`TrackerOptions.centroid` ``"intensity"``), the matched-filter position
        (``"matched"``) or the mask's mean pixel index (``"mask"``); ``(nan, nan)`` when absent.
    bbox : tuple of int or None
        ``(x0, y0, x1, y1)`` px with ``mask[y0:y1, x0:x1]`` holding the mask; ``None`` when absent.
    iou : float
        SAM 2's predicted IoU of the mask (mask quality estimate, 0–1).
    sigma : float
        Estimated localisation error of ``centroid`` (px, per coordinate) from the particle's
        size and signal-to-noise ratio (:meth:`samem.track.verify.Verifier.sigma`); NaN when
        absent or without :attr:`TrackerOptions.verify`.
    """

    mask: np.ndarray
    score: float
    present: bool
    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int] | None
    iou: float
    sigma: float = math.nan


class _Raw(NamedTuple):
    """SAM 2's output for one object on this frame (both views averaged under ``mirror``)."""

    logits: torch.Tensor  # low-resolution mask logits (1, 1, h, w)
    score_logit: float  # object-present logit
    iou: float  # predicted IoU of the mask


class _Look(NamedTuple):
    """The model's own mask of a present object: upsampled logits (window- or frame-sized),
    the ROI window (``None`` in full mode) and the mask's geometry in frame pixels."""

    up: torch.Tensor
    window: Window | None
    geometry: Geometry


class _Entry(NamedTuple):
    """A memory entry waiting to be written into ``memory`` after the frame."""

    memory: ObjectMemory
    entry: object
    prompted: bool


class _MemoryLook(NamedTuple):
    """SAM 2 on an extra input from an object's memory (:meth:`StreamingTracker._look_from_memory`)."""

    logits: torch.Tensor
    score_logit: float
    iou: float
    entry: object


class _SecondLook(NamedTuple):
    """The stacked window's segmentation of an object (``stack_frames``)."""

    logits: torch.Tensor
    iou: float
    window: Window
    entry: object


@dataclass
class _Object:
    memory: ObjectMemory
    side: int  # ROI window side, frame px
    size: float  # longest side of the prompt box, frame px
    centre: tuple[float, float]  # next ROI window centre, continuous frame coordinates
    last: tuple[float, float] | None = None  # last centroid seen (continuous coordinates)
    absent: bool = False  # reported absent on its last frame (samem.track.presence)
    pending: int = 0  # consecutive absent frames that passed the checks to be found again
    weak: int = 0  # consecutive present frames with a predicted IoU below lost_iou
    smoother: MaskSmoother = field(default_factory=lambda: MaskSmoother(1))  # TrackerOptions.smooth_frames
    twin: ObjectMemory | None = None  # memory of the mirrored view (TrackerOptions.mirror)
    stack: FrameStack | None = None  # past aligned windows (TrackerOptions.stack_frames)
    matched: MatchedFilter | None = None  # template of the particle (TrackerOptions.centroid "matched")
    verifier: Verifier | None = None  # detector and motion check (TrackerOptions.verify)
    box_wh: tuple[float, float] = (0.0, 0.0)  # prompt box width, height (px)
    reprompt: np.ndarray | None = None  # box the detector asks to prompt on the next frame
    trusted: bool = False  # prompted by the user on this frame (not by the detector)
    areas: collections.deque = field(default_factory=lambda: collections.deque(maxlen=WHOLE_AREAS))  # px²

    def clear_history(self) -> None:
        """Forget the past frames' masks, windows and template (absent, or prompted again)."""
        for history in (self.smoother, self.stack, self.matched):
            if history is not None:
                history.clear()


class StreamingTracker:
    """Track prompted objects through an endless stream of frames with SAM 2 memory.

    Parameters
    ----------
    model
        A SAM 2 model from :func:`samem.load_model` / :func:`samem.model.build_model`.
    mode
        ``"roi"`` or ``"full"`` (see :class:`TrackerOptions`); ``None``: the model config's.
    **options
        Any other :class:`TrackerOptions` field (``crop_size_px``, ``num_threads``, ...).

    Examples
    --------
    >>> tracker = StreamingTracker(samem.load_model(), mode="roi")
    >>> results = tracker.start(frame0, {1: (40, 52, 60, 71)})
    >>> for frame in stream:
    ...     results = tracker.step(frame)  # {1: ObjectResult(mask, score, present, ...)}
    """

    def __init__(self, model: torch.nn.Module, mode: str | None = None, **options):
        self.options = TrackerOptions.from_config(getattr(model, "samem_config", None), mode=mode, **options)
        self.model = model.eval()
        share_position_encoding(model)  # identical values, no per-image copies
        self._mixed = self.options.batch_memories and mixed.supported(model)
        self.device = next(model.parameters()).device
        self.input_size = int(model.image_size)
        if self.options.num_threads is not None:
            torch.set_num_threads(self.options.num_threads)
        self._memory_dtype = torch.bfloat16 if self.options.memory_dtype == "bfloat16" else torch.float32
        self._crop_px = self.options.crop_size_px or self.input_size
        opts = self.options
        self._presence = PresenceRule(
            opts.reappear_score,
            opts.reappear_iou,
            opts.reappear_frames,
            opts.lost_iou,
            opts.lost_frames,
            opts.reappear_edge,
        )
        self.reset()

    # ------------------------------------------------------------------ public API
    @property
    def mode(self) -> str:
        return self.options.mode

    @property
    def object_ids(self) -> list[Hashable]:
        """Ids of the objects being tracked."""
        return list(self._objects)

    @property
    def frame_index(self) -> int:
        """Index of the last processed frame (-1 before the first)."""
        return self._frame_idx

    def reset(self) -> None:
        """Forget all objects and the stream's frame size."""
        self._objects: dict[Hashable, _Object] = {}
        self._frame_idx = -1
        self._shape: tuple[int, int] | None = None
        self._pos_cache: dict[tuple, torch.Tensor] = {}
        self._recent: collections.deque = collections.deque(maxlen=self.options.verify_average)

    @property
    def denoise_sigma_px(self) -> float:
        """Sigma (frame px) of the frame smoothing: ``denoise`` x the objects' median prompt-box side."""
        return denoise_sigma(self.options.denoise, (o.size for o in self._objects.values()))

    def start(
        self, frame: np.ndarray, boxes: Mapping[Hashable, Sequence[float]]
    ) -> dict[Hashable, ObjectResult]:
        """Begin a new stream on ``frame`` with box prompts ``{object id: (x0, y0, x1, y1)}`` (px)."""
        if not boxes:
            raise SamemError("start needs at least one box prompt {object id: (x0, y0, x1, y1)}")
        self.reset()
        return self.step(frame, boxes)

    def step(
        self, frame: np.ndarray, prompts: Mapping[Hashable, Sequence[float]] | None = None
    ) -> dict[Hashable, ObjectResult]:
        """Process the next frame; ``prompts`` add new objects or correct existing ones here.

        Returns
        -------
        dict
            Object id → :class:`ObjectResult` for every tracked object.
        """
        if self._shape is None and not prompts:
            raise SamemError("no objects yet: call start(frame, boxes) first")
        opts = self.options
        gray = to_gray(frame)
        if self._shape is not None and gray.shape != self._shape:
            raise SamemError(f"frame size {gray.shape} differs from this stream's {self._shape}")
        boxes = {oid: self._check_box(oid, box, gray.shape) for oid, box in (prompts or {}).items()}
        self._shape = gray.shape
        self._frame_idx += 1
        for oid, obj in self._objects.items():
            if obj.reprompt is not None and oid not in boxes:  # the detector found it again
                boxes[oid] = obj.reprompt
            obj.reprompt = None
        for oid, box in boxes.items():
            self._prompt(oid, box)
        for oid, obj in self._objects.items():
            obj.trusted = prompts is not None and oid in prompts  # a user prompt is not checked
        if not self._objects:
            return {}
        gray = denoise(gray, self.denoise_sigma_px)
        levels = intensity_levels(gray, opts.low_percentile, opts.high_percentile)
        with torch.inference_mode(), self._autocast():
            return self._run(gray, levels, boxes)

    def remove(self, obj_id: Hashable) -> None:
        """Stop tracking an object and free its memory."""
        if obj_id not in self._objects:
            raise SamemError(f"object {obj_id!r} is not tracked (tracked: {self.object_ids})")
        del self._objects[obj_id]

    def state_nbytes(self) -> int:
        """Bytes held: SAM 2 memory tensors, mask-smoothing and frame-stacking history of every
        object, and the last frames the position check filters (``verify_average``)."""
        return sum(f.nbytes for f in self._recent) + sum(
            o.memory.nbytes()
            + o.smoother.nbytes()
            + (o.twin.nbytes() if o.twin is not None else 0)
            + (o.stack.nbytes() if o.stack is not None else 0)
            + (o.matched.nbytes() if o.matched is not None else 0)
            for o in self._objects.values()
        )

    # ------------------------------------------------------------------ internals
    def _autocast(self):
        if self.device.type == "cuda" and self.options.cuda_bf16:  # pragma: no cover - no GPU in CI
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @staticmethod
    def _check_box(obj_id, box, shape) -> np.ndarray:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.size != 4 or not np.isfinite(b).all():
            raise SamemError(f"box of object {obj_id!r} must be 4 finite numbers x0, y0, x1, y1; got {box!r}")
        h, w = shape
        clipped = np.clip(b, 0, [w, h, w, h])
        if not (clipped[2] > clipped[0] and clipped[3] > clipped[1]):
            raise SamemError(f"box {tuple(b)} of object {obj_id!r} is empty or outside the {w} x {h} frame")
        return clipped

    def _prompt(self, obj_id, box: np.ndarray) -> None:
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        opts = self.options
        side = window_side(box, self._crop_px, opts.context)
        obj = self._objects.get(obj_id)
        if obj is None:
            smoother = MaskSmoother(opts.smooth_frames, opts.mask_threshold)
            twin = self._new_memory() if opts.mirror else None
            stack = FrameStack(opts.stack_frames) if opts.stack_frames > 1 else None
            matched = (
                MatchedFilter(opts.matched_rate, opts.matched_half) if opts.centroid == "matched" else None
            )
            self._objects[obj_id] = _Object(
                self._new_memory(),
                side,
                box_side(box),
                centre,
                smoother=smoother,
                twin=twin,
                stack=stack,
                matched=matched,
                verifier=self._new_verifier(box) if opts.verify else None,
                box_wh=(float(box[2] - box[0]), float(box[3] - box[1])),
            )
            return
        if opts.clear_memory_on_prompt:
            obj.memory.clear_recent()
            if obj.twin is not None:
                obj.twin.clear_recent()
        obj.clear_history()
        obj.side, obj.size, obj.centre, obj.last = side, box_side(box), centre, None
        obj.absent, obj.pending, obj.weak = False, 0, 0
        obj.box_wh = (float(box[2] - box[0]), float(box[3] - box[1]))

    def _new_verifier(self, box: np.ndarray) -> Verifier:
        opts = self.options
        radius = 0.5 * math.sqrt(max(1.0, float(box[2] - box[0]) * float(box[3] - box[1])))
        return Verifier(
            radius,
            opts.verify_step,
            opts.verify_sigmas,
            opts.verify_z,
            opts.verify_fraction,
            opts.verify_peak_z,
            opts.verify_peak_fraction,
            opts.verify_frames,
            (opts.verify_floor_z, opts.verify_floor_fraction),
            (opts.verify_return_z, opts.verify_return_fraction),
            opts.verify_max_gap,
            opts.verify_rejoin_frames,
        )

    def _new_memory(self) -> ObjectMemory:
        m = self.model
        stride = m.memory_temporal_stride_for_eval
        return ObjectMemory(m.num_maskmem, m.max_obj_ptrs_in_encoder, self.options.max_cond_frames, stride)

    def _encode(self, gray: np.ndarray, levels: Levels, ids: list) -> tuple:
        """Features of the model inputs: one per object (ROI) or one frame (full), then, with
        ``mirror``, the same inputs flipped left-right in the same order."""
        size = self.input_size
        if self.mode == "full":
            inputs = [resize_square(apply_levels(gray, levels), size)]
            windows = None
        else:
            windows = {oid: Window.around(*self._objects[oid].centre, self._objects[oid].side) for oid in ids}
            inputs = [cut_normalized(gray, windows[oid], size, levels) for oid in ids]
        if self.options.mirror:
            inputs += [x[:, ::-1] for x in inputs]
        return self._encode_inputs(inputs), windows

    def _encode_inputs(self, inputs: list) -> Features:
        """Image-encoder features of normalised model inputs (``cpu_bf16``: encoded in bfloat16
        on CPU, returned as float32)."""
        images = to_model_input(inputs, self.device)
        if not (self.device.type == "cpu" and self.options.cpu_bf16):
            return encode_images(self.model, images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feats = encode_images(self.model, images)
        return feats.to(torch.float32)

    def _centre_on_peaks(self, gray: np.ndarray, ids: list, boxes: Mapping) -> None:
        """``window_peak``: move each tracked, present object's window towards this frame's
        strongest detector peak near where it waits, if that peak could prompt the object
        (:class:`TrackerOptions`)."""
        waiting = [  # pixel indices of every object's window centre before any moves
            (o, self._objects[o].centre[0] - 0.5, self._objects[o].centre[1] - 0.5, self._objects[o].verifier)
            for o in ids
        ]
        for oid, cx, cy, ver in waiting:
            obj = self._objects[oid]
            if oid in boxes or ver is None or obj.absent or ver.motion.last is None:
                continue
            others = [(x, y, v.radius) for o, x, y, v in waiting if o != oid and v is not None]
            found = ver.peak_near(gray, (cx, cy), ver.frame_gate(), others)
            if found is not None:
                dx, dy = found[0] - cx, found[1] - cy
                cap = ver.motion.spread()  # at most one per-axis step spread towards the peak
                d = math.hypot(dx, dy)
                if d > cap:
                    dx, dy = dx * cap / d, dy * cap / d
                obj.centre = _inside_frame(cx + dx + 0.5, cy + dy + 0.5, gray.shape)

    def _batch_index(self, ids: list, members: list, windows) -> list[int]:
        """Rows of :meth:`_encode`'s features for ``members``, then their mirrored views."""
        n_inputs = 1 if windows is None else len(ids)
        index = [0] * len(members) if windows is None else [ids.index(o) for o in members]
        return index + [i + n_inputs for i in index] if self.options.mirror else index

    def _groups(self, ids: list, boxes: Mapping) -> list[tuple[list, bool]]:
        """Objects that run SAM 2's step together: the prompted ones, and the others (one batch
        whatever their memories hold when the model allows it, :mod:`samem.track.mixed`; else
        one batch per memory layout)."""
        groups: dict[tuple, list] = {}
        for oid in ids:
            if oid in boxes:
                key = ("prompt",)
            else:
                key = ("track",) if self._mixed else self._objects[oid].memory.layout()
            groups.setdefault(key, []).append(oid)
        return [(members, key == ("prompt",)) for key, members in groups.items()]

    def _run(self, gray: np.ndarray, levels: Levels, boxes: Mapping) -> dict[Hashable, ObjectResult]:
        ids = list(self._objects)
        if self.options.window_peak and self.mode == "roi":
            self._centre_on_peaks(gray, ids, boxes)
        feats, windows = self._encode(gray, levels, ids)
        raw, flags, entries = {}, {}, {}
        mirror = self.options.mirror
        for members, prompted in self._groups(ids, boxes):
            n = len(members)
            if windows is None and not mirror:
                group_feats = feats.expand(n)
            else:
                group_feats = feats.take(self._batch_index(ids, members, windows))
            box_t = self._input_boxes(members, boxes, windows, gray.shape) if prompted else None
            memories = [self._objects[o].memory for o in members]
            gate = self._gate(members) if not prompted else None
            step_gate = gate
            if mirror:  # the mirrored views run in the same batch, after the direct ones
                memories += [self._objects[o].twin for o in members]
                box_t = None if box_t is None else torch.cat([box_t, mirror_boxes(box_t, self.input_size)])
                step_gate = paired_gate(gate, n)
            out = track_step(
                self.model, group_feats, memories, self._frame_idx, box_t, self._memory_dtype, step_gate
            )
            for i, oid in enumerate(members):
                if gate is not None:
                    flags[oid] = (bool(gate.passed[i]), bool(gate.weak[i]))
                obj = self._objects[oid]
                entries[oid] = [_Entry(obj.memory, out.entries[i], prompted)]
                logits, iou = out.low_res_logits[i : i + 1], float(out.iou[i])
                if mirror:  # both views share one presence decision (paired_gate)
                    entries[oid].append(_Entry(obj.twin, out.entries[n + i], prompted))
                    logits = (logits + out.low_res_logits[n + i : n + i + 1].flip(-1)) / 2
                    iou = (iou + float(out.iou[n + i])) / 2
                raw[oid] = _Raw(logits, float(out.object_score_logits[i]), iou)
        seen = {
            o: self._observe(
                self._objects[o], raw[o].logits, raw[o].score_logit, windows and windows[o], gray.shape
            )
            for o in ids
        }
        if self.options.verify:
            self._verify(gray, ids, seen, raw, entries)
        second = self._second_look(gray, levels, ids, boxes, seen) if self.options.stack_frames > 1 else {}
        if self.options.search_zoom > 1 and windows is not None:
            self._search(gray, levels, [o for o in ids if seen[o] is None and o not in boxes], seen)
        if self.options.stack_memory:  # (stack_frames excludes mirror: one entry per object)
            for oid, look in second.items():
                entries[oid] = [_Entry(self._objects[oid].memory, look.entry, False)]
        for oid in ids:  # memories are written after the second look, which reads them as they were
            for memory, entry, prompted in entries[oid]:
                self._remember(memory, entry, prompted)
        results = {}
        for oid in ids:
            obj = self._objects[oid]
            obj.memory.prune(self._frame_idx + 1)
            if obj.twin is not None:
                obj.twin.prune(self._frame_idx + 1)
            look = seen[oid]
            iou = raw[oid].iou
            if oid in second:  # the stacked window's mask is reported, when it has one
                stacked = second[oid]
                window2 = stacked.window
                up2 = upsample_logits(stacked.logits, window2.side, window2.side)
                geometry2 = window_mask_geometry(up2 > 0, window2, gray.shape)
                if geometry2 is not None:
                    look, iou = _Look(up2, window2, geometry2), stacked.iou
            results[oid] = self._result(obj, look, raw[oid].score_logit, iou, gray)
            passed, weak = flags.get(oid, (False, False))  # the presence rule's run counters
            obj.pending = obj.pending + 1 if passed and obj.absent else 0
            obj.weak = obj.weak + 1 if weak and not obj.absent else 0
        return results

    def _verify(self, gray: np.ndarray, ids: list, seen: dict, raw: dict, entries: dict) -> None:
        """Check every object's position (:mod:`samem.track.verify`): an unconfirmed one is
        reported absent and kept out of memory; a detector peak may prompt it on the next frame."""
        self._recent.append(np.array(gray, np.float32))  # a copy: callers may reuse frame buffers
        frames = list(self._recent)
        found = {o: seen[o].geometry.centroid for o in ids if seen[o] is not None}
        for oid in ids:
            obj = self._objects[oid]
            ver = obj.verifier
            here = found.get(oid)
            if obj.trusted:  # a user prompt on this frame: trusted, starts the check
                ver.start(frames, here or (obj.centre[0] - 0.5, obj.centre[1] - 0.5), self._frame_idx)
                continue
            if ver.motion.last is None:  # never seen a trusted position (cannot happen via start())
                continue
            others = [(*found[o], self._objects[o].verifier.radius) for o in found if o != oid]
            verdict = ver.check(frames, self._frame_idx, here, others)
            if verdict.found is not None:
                (x, y), (bw, bh) = verdict.found, obj.box_wh
                x, y = x + 0.5, y + 0.5  # pixel indices -> continuous coordinates
                obj.reprompt = np.array([x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2])
            if verdict.supported:
                continue
            wait_x, wait_y = verdict.centre[0] + 0.5, verdict.centre[1] + 0.5  # the window waits there
            obj.centre = _inside_frame(wait_x, wait_y, gray.shape)
            if here is None:
                continue
            seen[oid] = None  # reported absent: a gap, not a wrong position
            found.pop(oid)
            obj.absent = True
            obj.clear_history()
            entries[oid] = []  # and kept out of SAM 2's memory
            raw[oid] = raw[oid]._replace(score_logit=min(raw[oid].score_logit, HELD_ABSENT_LOGIT))

    def _gate(self, members: list):
        """The presence gate of ``members`` (``None`` when it cannot change anything)."""
        objs = [self._objects[o] for o in members]
        rule = self._presence
        if not rule.active or not (rule.lost_iou > 0 or any(o.absent for o in objs)):
            return None
        state = (torch.tensor([getattr(o, k) for o in objs]) for k in ("absent", "pending", "weak"))
        return rule.gate(*state, torch.tensor([rule.near_edge(o.centre, o.size, self._shape) for o in objs]))

    def _input_boxes(self, members: list, boxes: Mapping, windows, shape) -> torch.Tensor:
        """Box prompts of ``members`` in model-input pixels."""
        size = self.input_size
        if windows is None:
            h, w = shape
            scaled = [boxes[o] * np.array([size / w, size / h, size / w, size / h]) for o in members]
        else:
            scaled = [windows[o].box_to_input(boxes[o], size) for o in members]
        return torch.tensor(np.array(scaled), dtype=torch.float32, device=self.device)

    def _remember(self, memory: ObjectMemory, entry, prompted: bool) -> None:
        """Store a new memory entry, sharing one positional-encoding tensor per shape."""
        pos = entry.maskmem_pos_enc
        shared = self._pos_cache.setdefault(tuple(pos.shape), pos.clone())
        memory.add(self._frame_idx, replace(entry, maskmem_pos_enc=shared), prompted)

    def _observe(self, obj: _Object, logits, score_logit: float, window, shape):
        """Presence and geometry of the model's own mask; steers the object's window.

        Returns a :class:`_Look` (``window`` ``None`` in full mode), or ``None`` when the object
        is absent."""
        h, w = shape
        up = upsample_logits(logits, *((h, w) if window is None else (window.side, window.side)))
        geometry = None
        if score_logit > 0:  # frame-sized mask in full mode, window-sized in ROI mode
            mask = up > 0
            geometry = mask_geometry(mask) if window is None else window_mask_geometry(mask, window, shape)
        obj.absent = geometry is None
        if geometry is None:
            obj.clear_history()
            return None
        self._update_centre(obj, geometry.centroid, shape)  # the model's own mask steers the window
        return _Look(up, window, geometry)

    def _look_from_memory(self, oids: list, inputs: list, gate=None) -> dict:
        """SAM 2 on one extra model input per object of ``oids``, from each object's memory as
        it was before this frame (grouped by memory layout as in :meth:`_groups`); nothing is
        remembered. Returns ``{id: _MemoryLook}``."""
        feats = self._encode_inputs(inputs)
        out = {}
        for members, _ in self._groups(oids, {}):
            memories = [self._objects[o].memory for o in members]
            rows = feats.take([oids.index(o) for o in members])
            step = track_step(self.model, rows, memories, self._frame_idx, None, self._memory_dtype, gate)
            for j, oid in enumerate(members):
                logits, score_logit = step.low_res_logits[j : j + 1], float(step.object_score_logits[j])
                out[oid] = _MemoryLook(logits, score_logit, float(step.iou[j]), step.entries[j])
        return out

    def _second_look(self, gray: np.ndarray, levels: Levels, ids: list, boxes: Mapping, seen: Mapping):
        """SAM 2 on each present object's stacked window (``stack_frames``, :mod:`samem.track.stack`).

        Every present object's window, cut around the model's own centroid, joins its stack;
        objects with a history (not prompted on this frame) are segmented on the stacked
        window from their memory as it was before this frame. Returns ``{id: _SecondLook}``."""
        size = self.input_size
        looked, inputs, wins = [], [], {}
        for oid in ids:
            obj, got = self._objects[oid], seen[oid]
            if obj.stack is None or got is None:
                continue
            centroid = got.geometry.centroid
            win = Window.around(centroid[0] + 0.5, centroid[1] + 0.5, obj.side)
            image = cut_normalized(gray, win, win.side, levels)
            origin = (win.x0, win.y0)
            if oid not in boxes and len(obj.stack):
                looked.append(oid)
                inputs.append(resize_square(obj.stack.stacked(image, origin, centroid), size))
                wins[oid] = win
            obj.stack.push(image, origin, centroid)
        if not looked:
            return {}
        looks = self._look_from_memory(looked, inputs, _keep_present)
        return {oid: _SecondLook(look.logits, look.iou, wins[oid], look.entry) for oid, look in looks.items()}

    def _search(self, gray: np.ndarray, levels: Levels, lost: list, seen: Mapping) -> None:
        """Move absent objects' waiting windows onto what a wider look finds (``search_zoom``)."""
        if not lost:
            return
        opts, size = self.options, self.input_size
        wins = {
            o: Window.around(*self._objects[o].centre, round(self._objects[o].side * opts.search_zoom))
            for o in lost
        }
        looks = self._look_from_memory(lost, [cut_normalized(gray, wins[o], size, levels) for o in lost])
        others = [
            (got.geometry.centroid, self._objects[o].size) for o, got in seen.items() if got is not None
        ]
        need = float(logit(opts.reappear_score))
        for oid, look in looks.items():
            if look.score_logit < need or look.iou < opts.reappear_iou:
                continue
            win = wins[oid]
            up = upsample_logits(look.logits, win.side, win.side)
            found = window_mask_geometry(up > 0, win, gray.shape)
            if found is None:
                continue
            (cx, cy), size_here = found.centroid, self._objects[oid].size
            if any(math.hypot(cx - x, cy - y) < max(size_here, s) for (x, y), s in others):
                continue  # that is another tracked object
            self._objects[oid].centre = (cx + 0.5, cy + 0.5)

    def _result(self, obj: _Object, look, score_logit: float, iou: float, gray) -> ObjectResult:
        """Mask, centroid and box of one object from :meth:`_observe`'s ``look``."""
        shape = gray.shape
        h, w = shape
        score = float(expit(score_logit))
        if look is None:
            return ObjectResult(np.zeros((h, w), bool), score, False, (math.nan, math.nan), None, iou)
        up, window, geometry = look.up, look.window, look.geometry
        mask = up > 0
        if obj.smoother.active:
            if window is None:  # full mode: smooth on the ROI-sized window around the object
                cx, cy = geometry.centroid
                window = Window.around(cx + 0.5, cy + 0.5, obj.side)
                up = cut(up, window, window.side, -1e4)
                mask = up > 0
            smoothed = obj.smoother(expit(up), (window.x0, window.y0), geometry.centroid)
            smoothed_geometry = window_mask_geometry(smoothed, window, shape)
            if smoothed_geometry is not None:  # else keep the model's own (non-empty) mask
                mask, geometry = smoothed, smoothed_geometry
        centroid, bbox = geometry
        if window is not None:
            mask = paste(mask, window, shape)
        opts = self.options
        if opts.centroid != "mask":
            contrast = local_contrast(gray, mask, bbox, obj.size, ring=opts.centroid_ring)
            found = None if contrast is None else weighted_centroid(contrast)
            if found is not None and obj.matched is not None:
                found = obj.matched(contrast, found, obj.size)
            if found is not None and opts.mask_to_centroid:  # the mask goes where the contrast says
                moved = shift_mask(mask, bbox, found[0] - centroid[0], found[1] - centroid[1])
                if moved is not None:
                    mask, bbox = moved
            centroid = found or centroid
        if opts.refine_band_px > 0:  # the reported mask only (samem.track.refine)
            refined, _ = refine_mask(
                gray,
                mask,
                opts.refine_band_px,
                opts.refine_sigma_px,
                opts.refine_level,
                opts.refine_min_contrast,
                bbox,
            )
            refined_geometry = mask_geometry(refined)
            if refined_geometry is not None:  # else keep the unrefined (non-empty) mask
                mask, bbox = refined, refined_geometry.bbox
                if opts.centroid == "mask":
                    centroid = refined_geometry.centroid
        if opts.edge_centre:
            centroid = self._edge_centre(obj, mask, bbox, centroid, shape)
        sigma = obj.verifier.sigma() if obj.verifier is not None else math.nan
        return ObjectResult(mask, score, True, centroid, bbox, iou, sigma)

    @staticmethod
    def _edge_centre(obj: _Object, mask: np.ndarray, bbox, centroid, shape) -> tuple[float, float]:
        """The centre reconstructed beyond the frame border (:mod:`samem.track.edge`); whole
        masks feed the object's typical area."""
        h, w = shape
        x0, y0, x1, y1 = bbox
        area = float(np.count_nonzero(mask[y0:y1, x0:x1]))
        if x0 > 0 and y0 > 0 and x1 < w and y1 < h:
            obj.areas.append(area)
            return centroid
        typical = float(np.median(obj.areas)) if len(obj.areas) >= MIN_WHOLE_AREAS else math.nan
        return edge_centre(centroid, bbox, area, typical, shape)

    def _update_centre(self, obj: _Object, centroid: tuple[float, float], shape) -> None:
        now = (centroid[0] + 0.5, centroid[1] + 0.5)  # pixel indices -> continuous coordinates
        gain = self.options.velocity_gain
        if obj.last is not None and gain:
            now_pred = (now[0] + gain * (now[0] - obj.last[0]), now[1] + gain * (now[1] - obj.last[1]))
        else:
            now_pred = now
        obj.centre = _inside_frame(*now_pred, shape)
        obj.last = now


#: whole (uncut) masks whose median area is an object's typical area, and the least number of them
WHOLE_AREAS, MIN_WHOLE_AREAS = 15, 3


def _inside_frame(x: float, y: float, shape) -> tuple[float, float]:
    """``(x, y)`` (continuous px) moved onto the nearest point of a frame of ``shape``."""
    h, w = shape
    return min(max(x, 0.0), w), min(max(y, 0.0), h)


def _keep_present(scores: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
    """Score gate of the second look: the object is present (the first look decided)."""
    return scores.clamp(min=-HELD_ABSENT_LOGIT)


def mirror_boxes(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Box prompts ``(B, 4)`` (x0, y0, x1, y1, model-input px) on the left-right mirrored input."""
    return torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], dim=1)
