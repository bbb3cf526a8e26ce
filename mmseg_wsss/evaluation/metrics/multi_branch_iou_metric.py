# Copyright (c) OpenMMLab. All rights reserved.
from collections import OrderedDict
from typing import Dict, Sequence

from mmengine.logging import print_log

from mmseg_wsss.registry import METRICS
from .wsss_iou_metric import WSSSIoUMetric


@METRICS.register_module()
class MultiBranchIoUMetric(WSSSIoUMetric):
    """:class:`WSSSIoUMetric` of every branch of a multi-branch segmentor.

    DuPL validates both students. In validation mode the segmentor puts
    each branch's prediction in ``pred_keys`` of the data samples beside
    ``pred_sem_seg``, the prediction of its test-time rule
    (``test_cfg.branch``). This metric returns the metrics of
    ``pred_sem_seg`` unprefixed (``mIoU`` ...: what ``tools/test.py`` would
    report, chosen without the val labels), each branch's ``mIoU`` under
    ``branch{k}_mIoU``, and the 1-based index of the branch with the higher
    val mIoU as ``best_branch`` (ties to the lower index; read by
    :class:`BestBranchHook` for the opt-in ``test_cfg.branch='best'``, a
    choice made on the val pixel labels).

    Args:
        pred_keys (Sequence[str]): Data-sample fields holding the branch
            predictions, in branch order.
        main_key (str): Field of the test-time prediction. Defaults to
            'pred_sem_seg'.
        **kwargs: :class:`WSSSIoUMetric` arguments.
    """

    def __init__(self,
                 pred_keys: Sequence[str] = ('pred_sem_seg_branch1',
                                             'pred_sem_seg_branch2'),
                 main_key: str = 'pred_sem_seg',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if len(pred_keys) < 1:
            raise ValueError('pred_keys must name at least one field')
        self.pred_keys = tuple(pred_keys)
        self.main_key = main_key

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            keys = (self.main_key, ) + self.pred_keys
            missing = [k for k in keys if k not in sample]
            if missing:
                raise KeyError(
                    f'data sample has no {missing}: the segmentor must be a '
                    'multi-branch one in validation mode (see '
                    'BestBranchHook)')
            self.check_gt(sample, self.main_key)
            label = sample['gt_sem_seg']['data'].squeeze()
            self.results.append(
                tuple(
                    self.intersect_and_union(
                        sample[k]['data'].squeeze(), label.to(
                            sample[k]['data']), num_classes,
                        self.ignore_index) for k in keys))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        per_branch = []
        for index in range(len(self.pred_keys)):
            print_log(f'branch {index + 1}:', logger='current')
            per_branch.append(
                super().compute_metrics([r[index + 1] for r in results]))
        print_log(f'test-time prediction ({self.main_key}):',
                  logger='current')
        metrics = OrderedDict(
            super().compute_metrics([r[0] for r in results]))
        best = max(
            range(len(per_branch)), key=lambda i: (per_branch[i]['mIoU'], -i))
        for index, branch in enumerate(per_branch):
            metrics[f'branch{index + 1}_mIoU'] = branch['mIoU']
        metrics['best_branch'] = best + 1
        print_log(
            f'branch with the higher val mIoU: {best + 1} (used only with '
            "test_cfg.branch='best')",
            logger='current')
        return metrics
