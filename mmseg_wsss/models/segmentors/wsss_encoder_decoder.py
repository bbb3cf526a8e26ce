# Copyright (c) OpenMMLab. All rights reserved.
from typing import List

from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from mmseg_wsss.registry import MODELS
from ..postprocess import CRFPostProcessor, fuse_max_over_scales

FUSIONS = ('max_over_scales', )


@MODELS.register_module()
class WSSSEncoderDecoder(EncoderDecoder):
    """mmseg's :class:`EncoderDecoder` with the WSSS test-time fusion.

    ``test_cfg.fusion`` selects the method's own multi-scale + flip fusion;
    the fused *probabilities* are kept in ``seg_logits`` (mmseg's ``--tta``
    averages softmax outputs and drops them), so ``tools/test.py --crf``
    refines exactly what the paper's protocol refines. Without
    ``test_cfg.fusion`` inference is mmseg's (``whole``/``slide``).

    ``test_cfg.fusion`` keys:

    - ``type='max_over_scales'`` (ToCo, DuPL, FSR):
      :func:`fuse_max_over_scales` with ``scales`` (default
      (1.0, 1.25, 1.5)) and ``flip`` (default True).

    The 1Stage pipeline (:func:`fuse_mean_with_bg_power`) needs class scores
    as well as masks and lives in that method's segmentor.

    ``test_cfg.crf`` is the dense-CRF post-processing step of the WSSS
    segmentors (:class:`CRFPostProcessor`), applied to every prediction
    when enabled (``tools/test.py --crf``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.crf_postprocessor = CRFPostProcessor.build((self.test_cfg
                                                         or {}).get('crf'))

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        samples = super().postprocess_result(seg_logits, data_samples)
        crf = self.crf_postprocessor
        return samples if crf is None else crf.apply(samples)

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        fusion = self.test_cfg.get('fusion')
        if not fusion:
            return super().inference(inputs, batch_img_metas)
        if fusion.get('type') not in FUSIONS:
            raise ValueError(f'test_cfg.fusion.type must be one of {FUSIONS}, '
                             f'got {fusion.get("type")!r}')
        return fuse_max_over_scales(
            self._forward,
            inputs,
            scales=fusion.get('scales', (1.0, 1.25, 1.5)),
            flip=fusion.get('flip', True),
            align_corners=self.align_corners)
