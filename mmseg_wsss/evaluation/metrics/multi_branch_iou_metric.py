# Copyright (c) OpenMMLab. All rights reserved.
from collections import OrderedDict
from typing import Dict, Sequence

from mmengine.logging import print_log

from mmseg_wsss.registry import METRICS
from .wsss_iou_metric import WSSSIoUMetric


@METRICS.register_module()
class MultiBranchIoUMetric(WSSSIoUMetric):
    """:class:`WSSSIoUMetric` of every branch of a multi-branch segmentor.

    DuPL validates both students and tests with the better one. The
    segmentor puts each branch's prediction in ``pred_keys`` of the data
    samples (in validation mode); this metric scores each of them and
    returns the best branch's metrics unprefixed (``mIoU`` ... as any mmseg
    metric, so ``save_best='mIoU'`` works), each branch's ``mIoU`` under
    ``branch{k}_mIoU`` and the 1-based index of the best one as
    ``best_branch`` (read by :class:`BestBranchHook`). Ties go to the lower
    index.

    Args:
        pred_keys (Sequence[str]): Data-sample fields holding the branch
            predictions, in branch order.
        **kwargs: :class:`WSSSIoUMetric` arguments.
    """

    def __init__(self,
                 pred_keys: Sequence[str] = ('pred_sem_seg_branch1',
                                             'pred_sem_seg_branch2'),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if len(pred_keys) < 1:
            raise ValueError('pred_keys must name at least one field')
        self.pred_keys = tuple(pred_keys)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            missing = [k for k in self.pred_keys if k not in sample]
            if missing:
                raise KeyError(
                    f'data sample has no {missing}: the segmentor must be a '
                    'multi-branch one in validation mode (see '
                    'BestBranchHook)')
            label = sample['gt_sem_seg']['data'].squeeze()
            self.results.append(
                tuple(
                    self.intersect_and_union(
                        sample[k]['data'].squeeze(), label.to(
                            sample[k]['data']), num_classes,
                        self.ignore_index) for k in self.pred_keys))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        per_branch = []
        for index in range(len(self.pred_keys)):
            print_log(f'branch {index + 1}:', logger='current')
            per_branch.append(
                super().compute_metrics([r[index] for r in results]))
        best = max(
            range(len(per_branch)), key=lambda i: (per_branch[i]['mIoU'], -i))
        metrics = OrderedDict(per_branch[best])
        for index, branch in enumerate(per_branch):
            metrics[f'branch{index + 1}_mIoU'] = branch['mIoU']
        metrics['best_branch'] = best + 1
        print_log(f'best branch: {best + 1}', logger='current')
        return metrics
