# Copyright (c) OpenMMLab. All rights reserved.
from .aspp_v2_head import ASPPV2Head
from .cam_cls_head import CAMClsHead
from .large_fov_head import LargeFOVHead

__all__ = ['ASPPV2Head', 'CAMClsHead', 'LargeFOVHead']
from .single_stage_head import SingleStageHead  # noqa: E402

__all__ += ['SingleStageHead']
from .rrm_seg_head import RRMSegHead  # noqa: E402

__all__ += ['RRMSegHead']
from .agen_branch import AGENBranch  # noqa: E402

__all__ += ['AGENBranch']
