# Copyright (c) OpenMMLab. All rights reserved.
from .total_batch_info_hook import TotalBatchInfoHook

__all__ = ['TotalBatchInfoHook']
