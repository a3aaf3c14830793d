"""SAM 2's memory attention for objects whose memories differ, in one batch.

SAM 2 conditions a frame on the memory tokens of its object: the spatial memories of its
prompted and recent frames and the object pointers of those frames. sam2's code builds those
tokens for a batch whose objects all remember the same frames. In a tracker that keeps a
doubtful frame out of an object's memory (the position check, :mod:`samem.track.verify`) or
re-prompts one object, the objects of one stream soon remember different frames, and a step
per memory layout costs about as much as a step for the whole batch (issue 25: a singleton
step ~8 ms of CPU against ~3.5 ms per object in a batch of 32).

Here the tokens of each layout group are built by sam2's own code
(``SAM2Base._prepare_memory_conditioned_features``, called on a view of the model whose memory
attention is a module that captures its inputs; the model itself is not modified), then every
object's spatial tokens and pointer tokens are padded to the longest of the batch and one
memory attention runs for all objects, with a key mask so that no object attends to padding:
per object the same computation as its own group's, up to the rounding of differently sized
matrix products (tested against the per-layout steps).

Supported: sam2's ``MemoryAttention`` with ``MemoryAttentionLayer`` layers whose attentions are
sam2's ``RoPEAttention`` (every SAM 2 / 2.1 config and samem's); anything else falls back to
one step per layout (:func:`supported`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from samem.track.memory import UNBOUNDED_FRAMES, ObjectMemory, stack_output_dict


def supported(model: torch.nn.Module) -> bool:
    """Whether ``model``'s memory attention is the sam2 one this module mirrors."""
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.sam.transformer import RoPEAttention

    attention = getattr(model, "memory_attention", None)
    if type(attention) is not MemoryAttention or not attention.batch_first:
        return False
    if getattr(model, "num_maskmem", 0) <= 0 or not getattr(model, "use_obj_ptrs_in_encoder", False):
        return False
    return all(
        type(layer) is MemoryAttentionLayer
        and type(layer.cross_attn_image) is RoPEAttention
        and type(layer.self_attn) is RoPEAttention
        for layer in attention.layers
    )


class _Capture(torch.nn.Module):
    """Stands in for the memory attention: records its inputs, returns zeros of its output."""

    def __init__(self):
        super().__init__()
        self.inputs: dict = {}

    def forward(self, curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens=0):
        self.inputs = {"memory": memory, "memory_pos": memory_pos, "ptr": int(num_obj_ptr_tokens)}
        curr = curr[0] if isinstance(curr, list) else curr
        return torch.zeros_like(curr)


class _WithCapture:
    """``model`` as sam2's methods see it, with the memory attention replaced by a capture
    (attribute reads go to the model; the model itself is not modified)."""

    def __init__(self, model: torch.nn.Module, capture: _Capture):
        self._model = model
        self.memory_attention = capture

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def layout_groups(memories: list[ObjectMemory]) -> list[list[int]]:
    """Indices of ``memories`` grouped by :meth:`ObjectMemory.layout` (first appearance order)."""
    groups: dict[tuple, list[int]] = {}
    for i, memory in enumerate(memories):
        groups.setdefault(memory.layout(), []).append(i)
    return list(groups.values())


def _tokens(model, features, memories: list[ObjectMemory], frame_idx: int) -> dict:
    """sam2's memory tokens ``(L, b, mem_dim)`` and their encodings for objects of one layout."""
    capture = _Capture()
    type(model)._prepare_memory_conditioned_features(
        _WithCapture(model, capture),
        frame_idx=frame_idx,
        is_init_cond_frame=False,
        current_vision_feats=features.vision_feats[-1:],
        current_vision_pos_embeds=features.vision_pos[-1:],
        feat_sizes=features.feat_sizes[-1:],
        output_dict=stack_output_dict(memories),
        num_frames=UNBOUNDED_FRAMES,
        track_in_reverse=False,
    )
    return capture.inputs


def conditioned_features(
    model: torch.nn.Module,
    features,
    memories: list[ObjectMemory],
    frame_idx: int,
    groups: list[list[int]] | None = None,
) -> torch.Tensor:
    """The current frame's features fused with each object's own memory, ``(B, C, H, W)``.

    Parameters
    ----------
    model
        A ``SAM2Base`` for which :func:`supported` holds.
    features : samem.track.core.Features
        Image features with batch size ``B``, row ``i`` for ``memories[i]``.
    memories
        The ``B`` objects' memory banks, any layouts (none of them a prompt's first frame).
    frame_idx
        Index of this frame in the stream.
    groups
        :func:`layout_groups` of ``memories`` if the caller has it already.
    """
    n = len(memories)
    parts = []
    for rows in groups if groups is not None else layout_groups(memories):
        tokens = _tokens(model, features.take(rows), [memories[i] for i in rows], frame_idx)
        parts.append((rows, tokens))
    spatial = max(t["memory"].shape[0] - t["ptr"] for _, t in parts)
    pointers = max(t["ptr"] for _, t in parts)
    first = parts[0][1]["memory"]
    length, dim = spatial + pointers, first.shape[-1]
    memory = first.new_zeros(length, n, dim)
    memory_pos = first.new_zeros(length, n, dim)
    valid = torch.zeros(n, length, dtype=torch.bool, device=first.device)
    for rows, t in parts:
        idx = torch.as_tensor(rows, device=first.device)
        s = t["memory"].shape[0] - t["ptr"]
        for src, dst in ((t["memory"], memory), (t["memory_pos"], memory_pos)):
            dst[:s].index_copy_(1, idx, src[:s].to(dst.dtype))
            dst[spatial : spatial + t["ptr"]].index_copy_(1, idx, src[s:].to(dst.dtype))
        valid[idx, :s] = True
        valid[idx, spatial : spatial + t["ptr"]] = True
    curr, curr_pos = features.vision_feats[-1], features.vision_pos[-1]
    attention = model.memory_attention
    out = _masked_memory_attention(attention, curr, curr_pos, memory, memory_pos, valid, pointers)
    h, w = features.feat_sizes[-1]
    return out.permute(1, 2, 0).reshape(n, model.hidden_dim, h, w)


def _masked_memory_attention(attention, curr, curr_pos, memory, memory_pos, valid, num_ptr):
    """sam2's ``MemoryAttention.forward`` with a key mask ``valid`` ``(B, L)`` in every
    cross-attention; sequence-first in and out, as sam2's."""
    output = curr
    if attention.pos_enc_at_input and curr_pos is not None:
        output = output + 0.1 * curr_pos
    if attention.batch_first:
        output, curr_pos = output.transpose(0, 1), curr_pos.transpose(0, 1)
        memory, memory_pos = memory.transpose(0, 1), memory_pos.transpose(0, 1)
    mask = valid[:, None, None, :]  # (B, heads, queries, keys), broadcast
    for layer in attention.layers:
        output = layer._forward_sa(output, curr_pos)
        query = layer.norm2(output)
        attended = _rope_attention(
            layer.cross_attn_image,
            query + curr_pos if layer.pos_enc_at_cross_attn_queries else query,
            memory + memory_pos if layer.pos_enc_at_cross_attn_keys else memory,
            memory,
            num_ptr,
            mask,
        )
        output = output + layer.dropout2(attended)
        hidden = layer.activation(layer.linear1(layer.norm3(output)))
        output = output + layer.dropout3(layer.linear2(layer.dropout(hidden)))
    output = attention.norm(output)
    return output.transpose(0, 1) if attention.batch_first else output


def _rope_attention(attn, q, k, v, num_k_exclude_rope: int, mask: torch.Tensor) -> torch.Tensor:
    """sam2's ``RoPEAttention.forward`` with an attention mask (``True``: attend)."""
    from sam2.modeling.position_encoding import apply_rotary_enc

    q, k, v = attn.q_proj(q), attn.k_proj(k), attn.v_proj(v)
    q = attn._separate_heads(q, attn.num_heads)
    k = attn._separate_heads(k, attn.num_heads)
    v = attn._separate_heads(v, attn.num_heads)
    side = math.sqrt(q.shape[-2])
    attn.freqs_cis = attn.freqs_cis.to(q.device)
    if attn.freqs_cis.shape[0] != q.shape[-2]:
        attn.freqs_cis = attn.compute_cis(end_x=side, end_y=side).to(q.device)
    num_k_rope = k.size(-2) - num_k_exclude_rope
    q, k[:, :, :num_k_rope] = apply_rotary_enc(
        q, k[:, :, :num_k_rope], freqs_cis=attn.freqs_cis, repeat_freqs_k=attn.rope_k_repeat
    )
    dropout_p = attn.dropout_p if attn.training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    return attn.out_proj(attn._recombine_heads(out))
