# Copyright (c) OpenMMLab. All rights reserved.
import logging
from types import SimpleNamespace

from mmengine.config import Config

from mmseg_wsss.engine import TotalBatchInfoHook


class _Logger:

    def __init__(self):
        self.records = []

    def info(self, msg):
        self.records.append((logging.INFO, msg))

    def log(self, level, msg):
        self.records.append((level, msg))


def _runner(batch, base, enable=False):
    cfg = Config(dict(auto_scale_lr=dict(enable=enable, base_batch_size=base)))
    return SimpleNamespace(
        train_dataloader=SimpleNamespace(batch_size=batch),
        cfg=cfg,
        logger=_Logger())


def test_logs_total_and_matches():
    runner = _runner(batch=4, base=4)
    TotalBatchInfoHook().before_train(runner)
    assert runner.logger.records == [
        (logging.INFO, 'Total batch: 1 process(es) x 4 = 4 '
         '(the config records 4)')
    ]


def test_warns_when_total_differs():
    runner = _runner(batch=1, base=4)
    TotalBatchInfoHook().before_train(runner)
    level, msg = runner.logger.records[-1]
    assert level == logging.WARNING
    assert 'Total batch 1 differs from the 4' in msg
    assert '--auto-scale-lr' in msg
    runner = _runner(batch=1, base=4, enable=True)
    TotalBatchInfoHook().before_train(runner)
    assert 'LR was scaled linearly' in runner.logger.records[-1][1]
