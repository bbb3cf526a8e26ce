# Copyright (c) OpenMMLab. All rights reserved.
from .compat import apply_compat, has_compiled_mmcv_ops
from .config_utils import (iter_dataset_cfgs, load_tool_config,
                           set_data_root, setup_cpu_distributed,
                           sync_num_classes, teardown_distributed)

__all__ = [
    'apply_compat', 'has_compiled_mmcv_ops', 'iter_dataset_cfgs',
    'load_tool_config',
    'set_data_root', 'setup_cpu_distributed', 'sync_num_classes',
    'teardown_distributed'
]
