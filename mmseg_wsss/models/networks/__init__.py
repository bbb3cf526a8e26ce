# Copyright (c) OpenMMLab. All rights reserved.
"""Networks: backbones with their heads and forward passes, no training
logic (gates, thresholds, schedules live in the segmentors)."""
from .toco_network import ToCoNetwork

__all__ = ['ToCoNetwork']
