# Copyright (c) OpenMMLab. All rights reserved.
from .wsss_vit import WSSSViT

__all__ = ['WSSSViT']
from .dilated_vgg16 import DilatedVGG16  # noqa: E402
from .wide_resnet38 import WideResNet38  # noqa: E402

__all__ += ['DilatedVGG16', 'WideResNet38']
from .agen_backbone import AGENBackbone  # noqa: E402

__all__ += ['AGENBackbone']
