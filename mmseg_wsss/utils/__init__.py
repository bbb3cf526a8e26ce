# Copyright (c) OpenMMLab. All rights reserved.
from .compat import apply_compat, has_compiled_mmcv_ops
from .config_utils import (drop_pretrained, iter_dataset_cfgs,
                           load_tool_config, num_extra_views, set_data_root,
                           setup_cpu_distributed, sync_num_classes,
                           teardown_distributed)
from .kernel_fingerprint import kernel_fingerprint

__all__ = [
    'apply_compat', 'drop_pretrained', 'has_compiled_mmcv_ops',
    'iter_dataset_cfgs', 'kernel_fingerprint', 'load_tool_config',
    'num_extra_views', 'set_data_root', 'setup_cpu_distributed',
    'sync_num_classes', 'teardown_distributed'
]
