"""Mask layer: node masks, per-layer allocation, compaction, and sub-network size and cost."""

from .compact import apply_weight_masks, compact, weight_masks
from .metrics import count_flops, count_params, prunable_weight_count, weight_sparsity
from .node import NodeMask, allocate, check_sparsity, dense_mask, mask_from_scores, random_mask

__all__ = [
    "NodeMask", "allocate", "apply_weight_masks", "check_sparsity", "compact", "count_flops", "count_params",
    "dense_mask", "mask_from_scores", "prunable_weight_count", "random_mask", "weight_masks", "weight_sparsity",
]
