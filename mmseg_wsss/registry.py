# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg_wsss registers into mmseg's registries (default scope ``mmseg``).

Code imports the registries from here so the scope can change in one place.
"""
from mmseg.registry import (DATASETS, HOOKS, LOOPS, METRICS, MODELS,
                            TRANSFORMS, VISUALIZERS)

__all__ = [
    'DATASETS', 'HOOKS', 'LOOPS', 'METRICS', 'MODELS', 'TRANSFORMS',
    'VISUALIZERS'
]
