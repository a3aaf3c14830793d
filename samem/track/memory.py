"""The bounded SAM 2 memory bank of one tracked object.

SAM 2 conditions frame ``t`` on (a) the memories of its conditioning (prompted) frames,
(b) the spatial memories of the last ``num_maskmem - 1`` frames and (c) the object pointers of
the conditioning frames and of the last ``max_obj_ptrs - 1`` frames. sam2's video predictor
keeps every frame's output forever; :class:`ObjectMemory` keeps exactly what the next frame
can read and nothing else:

* at most ``max_cond_frames`` conditioning entries (the most recent prompts win);
* spatial features only for the frames SAM 2 will look up next (``spatial_frames``, which
  mirrors ``SAM2Base._prepare_memory_conditioned_features`` including its temporal stride);
* pointers and object scores for the last ``max_obj_ptrs - 1`` frames.

:func:`stack_output_dict` turns a group of objects with the same layout into sam2's
``output_dict`` (batch = objects), so the stock ``SAM2Base`` code reads them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

#: stands for "the stream has no known length" in sam2's ``num_frames`` arguments
UNBOUNDED_FRAMES = 2**31 - 1


@dataclass(frozen=True)
class MemoryEntry:
    """What one frame leaves in one object's memory (tensors with batch size 1).

    Attributes
    ----------
    maskmem_features : torch.Tensor or None
        Spatial memory ``(1, mem_dim, h, w)``; ``None`` once only the pointer is still needed.
    maskmem_pos_enc : torch.Tensor or None
        Its positional encoding ``(1, mem_dim, h, w)`` (shared between frames of one size).
    obj_ptr : torch.Tensor
        Object pointer ``(1, hidden_dim)``.
    object_score_logits : torch.Tensor
        Object-present logit ``(1, 1)``.
    """

    maskmem_features: torch.Tensor | None
    maskmem_pos_enc: torch.Tensor | None
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor


def spatial_frames(frame_idx: int, num_maskmem: int, stride: int = 1) -> set[int]:
    """Frame indices whose spatial memory SAM 2 reads when tracking ``frame_idx`` forward."""
    frames = set()
    for t_pos in range(1, num_maskmem):
        t_rel = num_maskmem - t_pos
        if t_rel == 1:
            frames.add(frame_idx - 1)
        else:
            frames.add(((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride)
    return frames


class ObjectMemory:
    """Bounded memory bank of one object (see the module docstring).

    Parameters
    ----------
    num_maskmem
        The model's ``num_maskmem`` (1 conditioning slot + ``num_maskmem - 1`` recent frames).
    max_obj_ptrs
        The model's ``max_obj_ptrs_in_encoder``.
    max_cond_frames
        Conditioning (prompted) frames kept; older ones are dropped first.
    stride
        The model's ``memory_temporal_stride_for_eval``.
    """

    def __init__(self, num_maskmem: int, max_obj_ptrs: int, max_cond_frames: int, stride: int = 1):
        if max_cond_frames < 1:
            raise ValueError("max_cond_frames must be at least 1")
        self.num_maskmem = num_maskmem
        self.max_obj_ptrs = max_obj_ptrs
        self.max_cond_frames = max_cond_frames
        self.stride = stride
        self.cond: dict[int, MemoryEntry] = {}
        self.non_cond: dict[int, MemoryEntry] = {}

    def add(self, frame_idx: int, entry: MemoryEntry, is_cond: bool) -> None:
        """Store the entry of ``frame_idx`` (as a conditioning frame if it was prompted)."""
        if is_cond:
            self.non_cond.pop(frame_idx, None)
            self.cond[frame_idx] = entry
            while len(self.cond) > self.max_cond_frames:
                del self.cond[min(self.cond)]
        else:
            self.non_cond[frame_idx] = entry

    def clear_recent(self) -> None:
        """Forget all non-conditioning memory (e.g. after a correcting prompt)."""
        self.non_cond.clear()

    def prune(self, next_frame_idx: int) -> None:
        """Drop everything tracking ``next_frame_idx`` and later frames cannot read."""
        keep_spatial = spatial_frames(next_frame_idx, self.num_maskmem, self.stride)
        oldest_ptr = next_frame_idx - (self.max_obj_ptrs - 1)
        for t in list(self.non_cond):
            entry = self.non_cond[t]
            if t < oldest_ptr and t not in keep_spatial:
                del self.non_cond[t]
            elif t not in keep_spatial and entry.maskmem_features is not None:
                self.non_cond[t] = replace(entry, maskmem_features=None, maskmem_pos_enc=None)

    def layout(self) -> tuple:
        """Hashable description of the stored frames; equal layouts can be batched together."""
        recent = tuple((t, e.maskmem_features is not None) for t, e in sorted(self.non_cond.items()))
        return tuple(sorted(self.cond)), recent

    def nbytes(self) -> int:
        """Bytes held by this memory's tensors (shared positional encodings counted once)."""
        seen, total = set(), 0
        for entry in (*self.cond.values(), *self.non_cond.values()):
            for t in (
                entry.maskmem_features,
                entry.maskmem_pos_enc,
                entry.obj_ptr,
                entry.object_score_logits,
            ):
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    total += t.numel() * t.element_size()
        return total


def _stack(entries: list[MemoryEntry]) -> dict:
    first = entries[0]
    n = len(entries)
    if n == 1:
        return {
            "obj_ptr": first.obj_ptr,
            "object_score_logits": first.object_score_logits,
            "maskmem_features": first.maskmem_features,
            "maskmem_pos_enc": None if first.maskmem_pos_enc is None else [first.maskmem_pos_enc],
        }
    out = {
        "obj_ptr": torch.cat([e.obj_ptr for e in entries]),
        "object_score_logits": torch.cat([e.object_score_logits for e in entries]),
        "maskmem_features": None,
        "maskmem_pos_enc": None,
    }
    if first.maskmem_features is not None:
        out["maskmem_features"] = torch.cat([e.maskmem_features for e in entries])
        out["maskmem_pos_enc"] = [first.maskmem_pos_enc.expand(n, -1, -1, -1)]
    return out


def stack_output_dict(memories: list[ObjectMemory]) -> dict[str, dict[int, dict]]:
    """sam2's ``output_dict`` for a batch of objects that share one :meth:`ObjectMemory.layout`."""
    first = memories[0]
    return {
        "cond_frame_outputs": {t: _stack([m.cond[t] for m in memories]) for t in first.cond},
        "non_cond_frame_outputs": {t: _stack([m.non_cond[t] for m in memories]) for t in first.non_cond},
    }
