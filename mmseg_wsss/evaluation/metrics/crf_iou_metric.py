# Copyright (c) OpenMMLab. All rights reserved.
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch

from mmseg_wsss.models.postprocess import CRFPool, DenseCRF
from mmseg_wsss.registry import METRICS
from .wsss_iou_metric import WSSSIoUMetric


@METRICS.register_module()
class CRFIoUMetric(WSSSIoUMetric):
    """:class:`WSSSIoUMetric` of dense-CRF refined predictions.

    For every test image the model's fused scores (``seg_logits``, already
    at the original resolution) are turned into probabilities, refined by a
    :class:`DenseCRF` together with the original image (read from
    ``img_path`` at its original resolution), and the CRF's argmax is scored
    (and written to ``output_dir`` if set). The CRF runs in ``num_workers``
    CPU worker processes while the model goes on with the next images.

    ``tools/test.py --crf`` builds this metric from ``model.test_cfg.crf``.

    Args:
        crf (dict): :class:`DenseCRF` arguments, e.g. ``dict(preset='toco')``.
        prob_mode (str): How ``seg_logits`` become probabilities:
            'softmax' (segmentation logits) or 'normalize' (non-negative
            scores divided by their per-pixel sum, as ToCo does for CAM
            score stacks). Defaults to 'softmax'.
        num_workers (int): CRF worker processes (0: inline). Defaults to 2.
        **kwargs: Arguments of :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 crf: Optional[dict] = None,
                 prob_mode: str = 'softmax',
                 num_workers: int = 2,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if prob_mode not in ('softmax', 'normalize'):
            raise ValueError('prob_mode must be "softmax" or "normalize", '
                             f'got {prob_mode!r}')
        self.crf = DenseCRF(**(crf or dict(preset='toco')))
        self.prob_mode = prob_mode
        self.num_workers = num_workers
        self._pool: Optional[CRFPool] = None
        self._waiting: Dict[int, dict] = {}
        self._next_key = 0

    def to_probs(self, scores: torch.Tensor) -> np.ndarray:
        """(C, H, W) scores to (C, H, W) float32 probabilities."""
        scores = scores.float()
        if self.prob_mode == 'softmax':
            probs = scores.softmax(dim=0)
        else:
            scores = scores.clamp(min=0)
            probs = scores / scores.sum(dim=0, keepdim=True).clamp(min=1e-5)
        return probs.cpu().numpy()

    def _collect(self, finished) -> None:
        for key, label in finished:
            sample = self._waiting.pop(key)
            sample['pred_sem_seg'] = dict(
                data=torch.from_numpy(label.astype(np.int64))[None])
            super().process({}, [sample])

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        if self._pool is None:
            self._pool = CRFPool(
                self.crf, num_workers=self.num_workers, return_label=True)
        for data_sample in data_samples:
            image = mmcv.imread(data_sample['img_path'], channel_order='rgb')
            probs = self.to_probs(data_sample['seg_logits']['data'])
            if probs.shape[1:] != image.shape[:2]:
                raise ValueError(
                    f'seg_logits of {data_sample["img_path"]} are '
                    f'{tuple(probs.shape[1:])}, the image is '
                    f'{image.shape[:2]}: CRF needs scores at the original '
                    'resolution')
            key = self._next_key
            self._next_key += 1
            self._waiting[key] = {
                k: data_sample[k]
                for k in ('img_path', 'gt_sem_seg', 'reduce_zero_label')
                if k in data_sample
            }
            self._pool.submit(key, image, probs)
            self._collect(self._pool.results())

    def evaluate(self, size: int) -> dict:
        """Wait for the CRF workers, then compute the metrics."""
        if self._pool is not None:
            self._collect(self._pool.drain())
            self._pool.close()
            self._pool = None
        return super().evaluate(size)
