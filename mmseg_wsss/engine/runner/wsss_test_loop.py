# Copyright (c) OpenMMLab. All rights reserved.
from collections import deque
from typing import Any, Deque, Dict, Hashable, Iterable, List, Optional, Tuple

import numpy as np
import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast
from mmengine.runner.loops import _parse_losses, _update_losses

from mmseg_wsss.registry import LOOPS


class _PendingBatch:
    """A tested batch whose CRF labels are not all back yet."""

    __slots__ = ('idx', 'data_batch', 'outputs', 'missing')

    def __init__(self, idx: int, data_batch: Any, outputs: List[Any]) -> None:
        self.idx = idx
        self.data_batch = data_batch
        self.outputs = outputs
        self.missing = len(outputs)


@LOOPS.register_module()
class WSSSTestLoop(TestLoop):
    """mmengine's :class:`TestLoop` with the dense CRF in parallel workers.

    When the (unwrapped) model has a ``crf_postprocessor``
    (:class:`~mmseg_wsss.models.postprocess.CRFPostProcessor`, built from
    ``model.test_cfg.crf`` with ``enable=True``), the loop sets its
    ``deferred`` flag, so the model's ``predict`` leaves the CRF out, and
    submits every output sample to it: the CRF runs in its worker processes
    while the model tests the next batches. A batch goes on -- in the
    original order -- to ``evaluator.process`` and the ``after_test_iter``
    hooks only once all its refined labels are back in ``pred_sem_seg``, so
    the metric, its ``output_dir`` PNGs (``tools/test.py --out``) and the
    visualisation hook (``--show-dir``) all see the CRF's prediction. At
    most ``max_pending_batches`` batches wait (then the loop waits for the
    oldest); the rest is drained before the metrics are computed, and
    ``deferred`` is restored at the end.

    Without a post-processor it is mmengine's ``TestLoop``.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test dataloader.
        evaluator (Evaluator | dict | list): The test evaluator.
        fp16 (bool): Test under autocast. Defaults to False.
        max_pending_batches (int, optional): Batches kept waiting for their
            CRF labels. Defaults to ``max(2, 2 * workers)`` of the
            post-processor.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 fp16: bool = False,
                 max_pending_batches: Optional[int] = None) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        if max_pending_batches is not None and max_pending_batches < 1:
            raise ValueError('max_pending_batches must be >= 1, got '
                             f'{max_pending_batches}')
        self.max_pending_batches = max_pending_batches
        self._post = None
        self._pending: Deque[_PendingBatch] = deque()
        self._where: Dict[Hashable, Tuple[_PendingBatch, int]] = {}
        self._next_key = 0

    @property
    def crf_postprocessor(self):
        """The model's CRF post-processor (None: no CRF)."""
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        return getattr(model, 'crf_postprocessor', None)

    def run(self) -> dict:
        """Launch test."""
        post = self.crf_postprocessor
        if post is None:
            return super().run()
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        self.test_loss.clear()

        max_pending = self.max_pending_batches or max(2, 2 * post.workers)
        deferred = post.deferred
        post.deferred = True
        self._post = post
        self._pending.clear()
        self._where.clear()
        self._next_key = 0
        finished = False
        try:
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
                self._collect(post.results())
                while len(self._pending) > max_pending:
                    self._wait_for_oldest()
            self._collect(post.drain())
            if self._pending:  # pragma: no cover (a lost task)
                raise RuntimeError(
                    f'{len(self._where)} CRF labels never came back')
            finished = True
        finally:
            post.deferred = deferred
            self._post = None
            self._pending.clear()
            self._where.clear()
            if finished:
                post.close()
            else:
                post.terminate()

        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.test_loss:
            loss_dict = _parse_losses(self.test_loss, 'test')
            metrics.update(loss_dict)
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        """Test one batch; with a CRF, submit its samples and defer the
        evaluation and ``after_test_iter`` until their labels are back.

        Args:
            idx (int): Batch index.
            data_batch (dict | Sequence[dict]): A batch of the dataloader.
        """
        if self._post is None:
            return super().run_iter(idx, data_batch)
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        with autocast(enabled=self.fp16):
            outputs = self.runner.model.test_step(data_batch)
        outputs, self.test_loss = _update_losses(outputs, self.test_loss)
        batch = _PendingBatch(idx, data_batch, list(outputs))
        self._pending.append(batch)
        for i, sample in enumerate(batch.outputs):
            key = self._next_key
            self._next_key += 1
            self._where[key] = (batch, i)
            self._post.submit(key, sample)
        self._flush()

    def _collect(self, finished: Iterable[Tuple[Hashable,
                                                np.ndarray]]) -> None:
        """Write finished labels into their samples, then flush."""
        for key, label in finished:
            self._assign(key, label)
        self._flush()

    def _assign(self, key: Hashable, label: np.ndarray) -> None:
        batch, i = self._where.pop(key)
        self._post.assign(batch.outputs[i], label)
        batch.missing -= 1

    def _wait_for_oldest(self) -> None:
        """Wait until the oldest pending batch is complete, then flush."""
        finished = iter(self._post.drain())
        try:
            for key, label in finished:
                self._assign(key, label)
                if self._pending[0].missing == 0:
                    break
            else:
                if self._pending[0].missing:  # pragma: no cover
                    raise RuntimeError('CRF labels of batch '
                                       f'{self._pending[0].idx} never came '
                                       'back')
        finally:
            close = getattr(finished, 'close', None)
            if close is not None:
                close()
        self._flush()

    def _flush(self) -> None:
        """Evaluate the complete batches at the head, in order."""
        while self._pending and self._pending[0].missing == 0:
            batch = self._pending.popleft()
            self.evaluator.process(
                data_samples=batch.outputs, data_batch=batch.data_batch)
            self.runner.call_hook(
                'after_test_iter',
                batch_idx=batch.idx,
                data_batch=batch.data_batch,
                outputs=batch.outputs)
