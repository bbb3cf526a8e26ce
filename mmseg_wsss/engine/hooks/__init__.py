# Copyright (c) OpenMMLab. All rights reserved.
from .best_branch_hook import BestBranchHook
from .cam_visualization_hook import CAMVisualizationHook
from .total_batch_info_hook import TotalBatchInfoHook
from .wsss_checkpoint_hook import WSSSCheckpointHook

__all__ = [
    'BestBranchHook', 'CAMVisualizationHook', 'TotalBatchInfoHook',
    'WSSSCheckpointHook'
]
