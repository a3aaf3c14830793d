"""One SAM 2 propagation step for a batch of objects, reusable with gradients for training.

This is SAM 2's own ``track_step`` (``SAM2Base._track_step`` + ``_encode_memory_in_output``:
memory attention over spatial memories and object pointers, prompt encoder, mask decoder,
object score, memory encoder), fed from :class:`samem.track.memory.ObjectMemory` banks
instead of a whole-video output dict. It also returns the IoU predictions that sam2's public
``track_step`` drops. Nothing here switches off autograd: :class:`StreamingTracker` wraps it in
``torch.inference_mode``, training calls it as is (with ``memory_dtype=None``).

Coordinates of box prompts are pixels of the model input (``0 .. model.image_size``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from samem.track import mixed
from samem.track.memory import UNBOUNDED_FRAMES, MemoryEntry, ObjectMemory, stack_output_dict


@dataclass
class Features:
    """Backbone features of a batch of model inputs, flattened as SAM 2 uses them.

    Attributes
    ----------
    vision_feats : list of torch.Tensor
        Per feature level (high-res first), ``(h * w, B, C)``.
    vision_pos : list of torch.Tensor
        Matching positional encodings.
    feat_sizes : list of tuple of int
        ``(h, w)`` of each level.
    """

    vision_feats: list[torch.Tensor]
    vision_pos: list[torch.Tensor]
    feat_sizes: list[tuple[int, int]]

    @property
    def batch_size(self) -> int:
        return self.vision_feats[-1].shape[1]

    def take(self, index: list[int]) -> Features:
        """The features of the batch entries ``index`` (in that order).

        The rows are gathered on the batch-major layout the encoder produced (``(h * w, B, C)``
        views of ``(B, C, h * w)`` tensors): block copies, tens of times faster on CPU than
        ``index_select`` along dimension 1 of the view, with identical results.
        """
        idx = torch.as_tensor(index, device=self.vision_feats[-1].device)
        last = len(self.vision_feats) - 1
        return Features(
            [_take_rows(x, idx, exact=i == last) for i, x in enumerate(self.vision_feats)],
            [_take_rows(p, idx, exact=i == last) for i, p in enumerate(self.vision_pos)],
            self.feat_sizes,
        )

    def expand(self, n: int) -> Features:
        """Repeat a single image's features for ``n`` objects (no copy)."""
        grow = [x.expand(-1, n, -1) for x in self.vision_feats]
        return Features(grow, [p.expand(-1, n, -1) for p in self.vision_pos], self.feat_sizes)

    def to(self, dtype: torch.dtype) -> Features:
        """These features in ``dtype`` (positional encodings included)."""
        return Features(
            [x.to(dtype) for x in self.vision_feats], [p.to(dtype) for p in self.vision_pos], self.feat_sizes
        )


def _take_rows(x: torch.Tensor, idx: torch.Tensor, exact: bool) -> torch.Tensor:
    """``x.index_select(1, idx)`` for ``x`` of shape ``(L, B, C)``, gathered along its
    batch-major storage when it has one (block copies). Same values; with ``exact`` also the
    same contiguous ``(L, b, C)`` layout as ``index_select`` (later matrix products can differ
    in the last bit with another layout). A tensor repeated along the batch without a copy
    (the shared positional encoding, :func:`share_position_encoding`) stays such a view."""
    if x.shape[1] > 0 and x.stride(1) == 0:
        return x[:, :1].expand(-1, idx.numel(), -1)
    batch_major = x.permute(1, 2, 0)
    if not batch_major.is_contiguous():
        return x.index_select(1, idx)
    rows = batch_major.index_select(0, idx).permute(2, 0, 1)
    return rows.contiguous() if exact else rows


class _SharedPositionEncoding(torch.nn.Module):
    """The image encoder's sine positional encoding, one copy per feature size for the whole
    batch (``expand``) where sam2 repeats it for every image: the same values, without copying
    ``B x C x H x W`` floats per level and frame, most of which nothing reads (SAM 2's step
    reads only the lowest-resolution level's)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = self.inner(x[:1])  # sam2 caches the (C, H, W) encoding of every size
        return one.expand(x.shape[0], -1, -1, -1)


def share_position_encoding(model: torch.nn.Module) -> None:
    """Make ``model``'s image encoder return its positional encodings as batch views (see
    :class:`_SharedPositionEncoding`; values unchanged, no parameters involved). Idempotent;
    models without sam2's sine encoding in an FPN neck are left as they are."""
    neck = getattr(getattr(model, "image_encoder", None), "neck", None)
    pe = getattr(neck, "position_encoding", None)
    if pe is None or isinstance(pe, _SharedPositionEncoding) or type(pe).__name__ != "PositionEmbeddingSine":
        return
    neck.position_encoding = _SharedPositionEncoding(pe)


def encode_images(model: torch.nn.Module, images: torch.Tensor) -> Features:
    """Run the image encoder (Hiera + FPN) on standardised inputs ``(B, 3, S, S)``."""
    backbone_out = model.forward_image(images)
    _, feats, pos, sizes = model._prepare_backbone_features(backbone_out)
    return Features(feats, pos, sizes)


@dataclass
class StepOutput:
    """Result of :func:`track_step` for a batch of ``B`` objects.

    Attributes
    ----------
    low_res_logits : torch.Tensor
        Mask logits ``(B, 1, S/4, S/4)`` on the model input (``-1024`` where SAM 2 judged the
        object absent).
    high_res_logits : torch.Tensor
        The same upsampled to ``(B, 1, S, S)``.
    iou : torch.Tensor
        Predicted IoU of the chosen mask, ``(B,)``.
    object_score_logits : torch.Tensor
        Object-present logits ``(B,)``; > 0 means present.
    entries : list of MemoryEntry
        The new memory of each object, spatial features cast to ``memory_dtype``.
    """

    low_res_logits: torch.Tensor
    high_res_logits: torch.Tensor
    iou: torch.Tensor
    object_score_logits: torch.Tensor
    entries: list[MemoryEntry]


def box_prompts(boxes: torch.Tensor) -> dict[str, torch.Tensor]:
    """SAM 2 point inputs for boxes ``(B, 4)`` as ``x0, y0, x1, y1`` (corner labels 2 and 3)."""
    coords = boxes.reshape(-1, 2, 2).float()
    labels = torch.tensor([[2, 3]], dtype=torch.int32, device=boxes.device).expand(coords.shape[0], 2)
    return {"point_coords": coords, "point_labels": labels}


#: ``score_gate(object_score_logits (B, 1), predicted_ious (B, M)) -> object_score_logits``
ScoreGate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _gate_object_scores(gate: ScoreGate):
    """Forward hook on the mask decoder: replace its object-score logits by ``gate``'s."""

    def hook(_module, _inputs, outputs):
        masks, ious, tokens, scores = outputs
        return masks, ious, tokens, gate(scores, ious)

    return hook


def track_step(
    model: torch.nn.Module,
    features: Features,
    memories: list[ObjectMemory],
    frame_idx: int,
    boxes: torch.Tensor | None = None,
    memory_dtype: torch.dtype | None = torch.bfloat16,
    score_gate: ScoreGate | None = None,
) -> StepOutput:
    """Segment ``B`` objects on one frame and encode their new memories.

    Parameters
    ----------
    model
        A ``SAM2Base`` (or subclass).
    features
        Image features with batch size ``B`` (one crop per object, or one frame expanded).
    memories
        The ``B`` objects' memory banks. Objects whose memories differ (:meth:`ObjectMemory.layout`)
        run in one batch with padded, masked memory attention (:mod:`samem.track.mixed`) when
        the model allows it, else they must share one layout (unless ``boxes`` is given).
    frame_idx
        Index of this frame in the stream (used for temporal encodings, differences only).
    boxes
        ``(B, 4)`` box prompts in model-input pixels: the frame becomes a conditioning
        frame decoded without memory (as SAM 2 does on a first prompt). ``None``: propagate.
    memory_dtype
        Storage dtype of the new spatial memory (sam2's video predictor uses bfloat16);
        ``None`` keeps the computed dtype and the autograd graph.
    score_gate
        Called with the object-score logits ``(B, 1)`` and the predicted IoUs of the candidate
        masks ``(B, M)`` as the mask decoder returns them; its logits replace SAM 2's, so that
        everything downstream (mask gating, object pointer, the "no object" memory) follows
        the gated decision. The tracker's presence rule uses it
        (:class:`samem.track.presence.PresenceRule`).
    """
    prompted = boxes is not None
    point_inputs = box_prompts(boxes) if prompted else None
    groups = None if prompted else mixed.layout_groups(memories)
    handle = None
    if score_gate is not None:
        handle = model.sam_mask_decoder.register_forward_hook(_gate_object_scores(score_gate))
    try:
        if groups is not None and len(groups) > 1:
            if not mixed.supported(model):
                raise ValueError("this model's memory attention needs objects with one memory layout")
            current_out, sam_outputs = _mixed_step(model, features, memories, frame_idx, groups)
        else:
            empty = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
            current_out, sam_outputs, _, _ = model._track_step(
                frame_idx,
                prompted,
                features.vision_feats,
                features.vision_pos,
                features.feat_sizes,
                point_inputs,
                None,
                empty if prompted else stack_output_dict(memories),
                UNBOUNDED_FRAMES,
                False,
                None,
            )
    finally:
        if handle is not None:
            handle.remove()
    _, _, ious, low_res, high_res, obj_ptr, score_logits = sam_outputs
    model._encode_memory_in_output(
        features.vision_feats, features.feat_sizes, point_inputs, True, high_res, score_logits, current_out
    )
    feats = current_out["maskmem_features"]
    if memory_dtype is not None:
        feats = feats.to(memory_dtype)
    pos = current_out["maskmem_pos_enc"][-1]
    entries = [
        MemoryEntry(feats[i : i + 1], pos[i : i + 1], obj_ptr[i : i + 1], score_logits[i : i + 1])
        for i in range(feats.shape[0])
    ]
    return StepOutput(low_res, high_res, ious.max(dim=1).values, score_logits[:, 0], entries)


def _mixed_step(model, features: Features, memories: list[ObjectMemory], frame_idx: int, groups: list):
    """``SAM2Base._track_step`` for propagation when the objects' memories differ: the memory
    attention of :func:`samem.track.mixed.conditioned_features`, then SAM 2's heads as sam2
    runs them."""
    feats, sizes = features.vision_feats, features.feat_sizes
    high_res = [x.permute(1, 2, 0).view(x.size(1), x.size(2), *s) for x, s in zip(feats[:-1], sizes[:-1])]
    pix_feat = mixed.conditioned_features(model, features, memories, frame_idx, groups)
    sam_outputs = model._forward_sam_heads(
        backbone_features=pix_feat,
        point_inputs=None,
        mask_inputs=None,
        high_res_features=high_res or None,
        multimask_output=model._use_multimask(False, None),
    )
    return {"point_inputs": None, "mask_inputs": None}, sam_outputs
