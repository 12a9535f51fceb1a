"""Mask layer: node masks, weight masks, allocation, compaction, and sub-network size and cost."""

from .compact import apply_weight_masks, compact, expand, weight_masks
from .metrics import count_flops, count_params, prunable_weight_count, weight_sparsity
from .node import (
    NodeMask, allocate, allocate_total, check_sparsity, dense_mask, global_node_count, mask_from_scores, node_scores, random_mask,
)
from .weight import (
    ALLOCATIONS, TOPK_RULES, WeightMask, apply_weight_mask, connected, global_count, layer_counts, random_weight_mask,
    pack_weight_mask, shuffle_weight_mask, unpack_weight_mask, weight_mask_from_counts, weight_mask_from_scores,
)

__all__ = [
    "ALLOCATIONS", "NodeMask", "TOPK_RULES", "WeightMask", "allocate", "allocate_total", "apply_weight_mask", "apply_weight_masks", "check_sparsity",
    "compact", "connected", "expand", "count_flops", "count_params", "dense_mask", "global_count", "global_node_count",
    "layer_counts", "mask_from_scores", "node_scores", "pack_weight_mask", "unpack_weight_mask", "prunable_weight_count", "random_mask", "random_weight_mask",
    "shuffle_weight_mask", "weight_mask_from_counts", "weight_mask_from_scores", "weight_masks", "weight_sparsity",
]
