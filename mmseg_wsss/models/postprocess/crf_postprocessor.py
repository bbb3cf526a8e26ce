# Copyright (c) OpenMMLab. All rights reserved.
"""The dense-CRF post-processing step of a segmentor (``test_cfg.crf``).

One object turns a segmentor's ``test_cfg.crf`` into refined predictions,
for every user: the segmentor's ``predict()`` (blocking, a batch of data
samples), :class:`~mmseg_wsss.engine.WSSSTestLoop` (asynchronous: the CRF
runs in worker processes while inference goes on), methods that put a CRF
inside training (:meth:`CRFPostProcessor.refine` on arrays) and
``tools/analysis_tools/benchmark_crf.py``.
"""
from collections.abc import Mapping
from typing import Any, Dict, Hashable, Iterator, List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from .dense_crf import CRFPool, DenseCRF
from .torch_dense_crf import TorchDenseCRF


class CRFPostProcessor:
    """Dense-CRF refinement of a segmentor's predictions.

    Built from ``test_cfg.crf`` with :meth:`build`::

        crf=dict(enable=True, preset='toco', xy_scale=96 / 448,
                 prob_mode='softmax', workers=2)

    For every data sample the original image is read from ``img_path`` (at
    its original resolution, RGB), ``seg_logits`` (C, H, W) -- the fused
    scores, which mmseg's ``postprocess_result`` already resized to the
    original (H, W) -- become probabilities (``prob_mode``), a
    :class:`DenseCRF` refines them, and the argmax replaces
    ``pred_sem_seg``; ``seg_logits`` stay as they are.

    Three ways to run it:

    - blocking on data samples: ``samples = post(samples)`` (the
      segmentor's ``predict``);
    - blocking on arrays: :meth:`refine` (labels) and
      :meth:`refine_probs` (probabilities), e.g. a CRF inside training;
    - asynchronous: :meth:`submit` samples, collect ``(key, label)`` from
      :meth:`results` (finished so far, no waiting) and :meth:`drain`
      (everything, waiting), write them with :meth:`assign`; this is what
      :class:`~mmseg_wsss.engine.WSSSTestLoop` does while the model goes on
      with the next batches. :attr:`deferred` tells the segmentor to leave
      the CRF to that loop.

    The blocking calls use a pool of ``workers`` processes when
    ``workers > 1`` and run inline otherwise; the asynchronous calls use the
    pool when ``workers >= 1`` (one worker already overlaps inference) and
    run inline at :meth:`submit` when ``workers == 0``. The pool
    (:class:`CRFPool`, label maps back, at most ``2 * workers`` tasks in
    flight) starts at first use and is reused until :meth:`close`.

    Args:
        preset (str, optional): A :data:`CRF_PRESETS` name ('toco',
            'toco_cam', '1stage', 'rrm').
        xy_scale (float): Factor for the two xy stds (:class:`DenseCRF`).
            Defaults to 1.0.
        prob_mode (str): How ``seg_logits`` become probabilities: 'softmax'
            (logits) or 'normalize' (non-negative scores divided by their
            per-pixel sum, as ToCo does for CAM score stacks). Defaults to
            'softmax'.
        workers (int): CRF worker processes (see above). Defaults to 2.
        iters (int, optional): Mean-field iterations (overrides the preset).
        pos_xy_std (float, optional): Gaussian kernel xy std (pixels).
        pos_w (float, optional): Gaussian kernel weight.
        bi_xy_std (float, optional): Bilateral kernel xy std (pixels).
        bi_rgb_std (float, optional): Bilateral kernel RGB std.
        bi_w (float, optional): Bilateral kernel weight.
        backend (str): 'pydensecrf' (default; CPU worker processes) or
            'torch' (:class:`TorchDenseCRF`: the same CRF in PyTorch, a
            whole batch in one call on ``device``, no pydensecrf needed;
            ``workers`` is then ignored).
        device (str): Device of the 'torch' backend. Defaults to 'cpu'.

    Attributes:
        crf (DenseCRF): The CRF.
        deferred (bool): When True the segmentor's ``predict`` does not run
            the CRF: a test loop runs it asynchronously. Defaults to False.
    """
    #: Keys of ``test_cfg.crf``.
    CFG_KEYS: Tuple[str, ...] = ('enable', 'workers', 'preset', 'xy_scale',
                                 'prob_mode', 'iters', 'pos_xy_std', 'pos_w',
                                 'bi_xy_std', 'bi_rgb_std', 'bi_w', 'backend',
                                 'device')
    BACKENDS: Tuple[str, ...] = ('pydensecrf', 'torch')
    PROB_MODES: Tuple[str, ...] = ('softmax', 'normalize')
    DEFAULT_WORKERS: int = 2

    def __init__(self,
                 preset: Optional[str] = None,
                 xy_scale: float = 1.0,
                 prob_mode: str = 'softmax',
                 workers: int = DEFAULT_WORKERS,
                 iters: Optional[int] = None,
                 pos_xy_std: Optional[float] = None,
                 pos_w: Optional[float] = None,
                 bi_xy_std: Optional[float] = None,
                 bi_rgb_std: Optional[float] = None,
                 bi_w: Optional[float] = None,
                 backend: str = 'pydensecrf',
                 device: str = 'cpu') -> None:
        if backend not in self.BACKENDS:
            raise ValueError(f'backend must be one of {self.BACKENDS}, got '
                             f'{backend!r}')
        if prob_mode not in self.PROB_MODES:
            raise ValueError(f'prob_mode must be one of {self.PROB_MODES}, '
                             f'got {prob_mode!r}')
        if isinstance(workers, bool) or not isinstance(workers, int) \
                or workers < 0:
            raise ValueError(f'workers must be an int >= 0, got {workers!r}')
        self.crf = DenseCRF(
            preset=preset,
            iters=iters,
            pos_xy_std=pos_xy_std,
            pos_w=pos_w,
            bi_xy_std=bi_xy_std,
            bi_rgb_std=bi_rgb_std,
            bi_w=bi_w,
            xy_scale=xy_scale)
        self.prob_mode = prob_mode
        self.backend = backend
        # The PyTorch CRF refines a whole batch in one call (its own
        # parallelism), so it needs no worker processes.
        self.torch_crf = TorchDenseCRF(self.crf.params, device) \
            if backend == 'torch' else None
        self.workers = 0 if backend == 'torch' else workers
        self.deferred = False
        self._pool: Optional[CRFPool] = None
        self._probs_pool: Optional[CRFPool] = None

    @classmethod
    def build(cls, crf_cfg: Optional[Mapping]) -> Optional['CRFPostProcessor']:
        """The post-processor of a ``test_cfg.crf`` dict, or None when off.

        The whole dict is checked even when the CRF is off, so a typo fails
        when the model is built.

        Args:
            crf_cfg (Mapping, optional): ``test_cfg.crf``: the keys of
                :attr:`CFG_KEYS`; ``enable`` (default False) switches the
                CRF on, the others are the arguments of this class.

        Returns:
            CRFPostProcessor | None: None when ``crf_cfg`` is None or
            ``enable`` is false.

        Raises:
            ValueError: An unknown key (named with the allowed ones) or a
                bad value.
        """
        if crf_cfg is None:
            return None
        if not isinstance(crf_cfg, Mapping):
            raise TypeError('test_cfg.crf must be a dict, got '
                            f'{type(crf_cfg).__name__}')
        unknown = [key for key in crf_cfg if key not in cls.CFG_KEYS]
        if unknown:
            raise ValueError(
                f'test_cfg.crf: unknown key(s) {unknown}; allowed keys: '
                f'{list(cls.CFG_KEYS)}')
        kwargs = dict(crf_cfg)
        enable = bool(kwargs.pop('enable', False))
        post = cls(**kwargs)
        return post if enable else None

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crf={self.crf!r}, '
                f'prob_mode={self.prob_mode!r}, workers={self.workers}, '
                f'deferred={self.deferred})')

    # Inputs and outputs -------------------------------------------------
    def to_probs(self, scores: torch.Tensor) -> np.ndarray:
        """Scores to probabilities as ``prob_mode`` says.

        Args:
            scores (Tensor): (C, H, W) scores (``seg_logits.data``).

        Returns:
            np.ndarray: (C, H, W) float32 probabilities.
        """
        scores = torch.as_tensor(scores).float()
        if self.prob_mode == 'softmax':
            probs = scores.softmax(dim=0)
        else:
            scores = scores.clamp(min=0)
            probs = scores / scores.sum(dim=0, keepdim=True).clamp(min=1e-5)
        return probs.cpu().numpy()

    def inputs(self, sample: SegDataSample) -> Tuple[np.ndarray, np.ndarray]:
        """The CRF inputs of one data sample.

        Args:
            sample (SegDataSample): With ``img_path`` and ``seg_logits``
                (C, H, W) at the image's original resolution.

        Returns:
            tuple[np.ndarray, np.ndarray]: The (H, W, 3) uint8 RGB image read
            from ``img_path`` and the (C, H, W) float32 probabilities.

        Raises:
            ValueError: ``seg_logits`` and the image differ in size.
        """
        img_path = sample.img_path
        image = mmcv.imread(img_path, channel_order='rgb')
        probs = self.to_probs(sample.seg_logits.data)
        if probs.shape[1:] != image.shape[:2]:
            raise ValueError(
                f'seg_logits of {img_path} are {tuple(probs.shape[1:])}, the '
                f'image is {image.shape[:2]}: CRF needs scores at the '
                'original resolution')
        return image, probs

    @staticmethod
    def assign(sample: SegDataSample, label: np.ndarray) -> SegDataSample:
        """Write a refined label map into ``sample.pred_sem_seg``.

        Args:
            sample (SegDataSample): The sample (changed in place); the new
                ``pred_sem_seg`` goes to the device of its ``seg_logits``.
            label (np.ndarray): (H, W) label map.

        Returns:
            SegDataSample: ``sample``, with ``pred_sem_seg.data`` the
            (1, H, W) int64 ``label``.
        """
        data = torch.from_numpy(np.asarray(label, dtype=np.int64))[None]
        if 'seg_logits' in sample:
            data = data.to(sample.seg_logits.data.device)
        sample.pred_sem_seg = PixelData(data=data)
        return sample

    # Blocking -----------------------------------------------------------
    def __call__(self,
                 data_samples: List[SegDataSample]) -> List[SegDataSample]:
        """Refine the predictions of a batch (blocking).

        Args:
            data_samples (list[SegDataSample]): Samples with ``img_path``
                and ``seg_logits`` (C, H, W) at the original resolution.

        Returns:
            list[SegDataSample]: The same samples, ``pred_sem_seg`` replaced
            by the (1, H, W) int64 CRF labels.
        """
        images, probs = [], []
        for sample in data_samples:
            image, prob = self.inputs(sample)
            images.append(image)
            probs.append(prob)
        for sample, label in zip(data_samples, self.refine(images, probs)):
            self.assign(sample, label)
        return data_samples

    def apply(self, data_samples: List[SegDataSample]) -> List[SegDataSample]:
        """The step as a model's ``predict`` runs it: :meth:`__call__`,
        unless :attr:`deferred` (a test loop refines in parallel workers).
        """
        return data_samples if self.deferred else self(data_samples)

    def refine(self, images: List[np.ndarray],
               probs: List[np.ndarray]) -> List[np.ndarray]:
        """Refine arrays (blocking; no file reading).

        Args:
            images (list[np.ndarray]): (H, W, 3) uint8 RGB images.
            probs (list[np.ndarray]): (C, H, W) float class probabilities
                of the same images (each pixel sums to 1).

        Returns:
            list[np.ndarray]: (H, W) int64 CRF label maps, in input order.
        """
        if len(images) != len(probs):
            raise ValueError(f'{len(images)} images but {len(probs)} '
                             'probability maps')
        if self.torch_crf is not None:
            labels = [
                p.argmax(axis=0) for p in self.torch_crf.refine(images, probs)
            ]
        elif self.workers > 1 and len(images) > 1:
            pool = self._get_pool()
            if len(pool):
                raise RuntimeError(
                    'CRFPostProcessor: a blocking call while asynchronous '
                    'tasks are pending; collect them with drain() first')
            labels = pool.map(zip(images, probs))
        else:
            labels = [self.crf.label(i, p) for i, p in zip(images, probs)]
        return [np.asarray(label, dtype=np.int64) for label in labels]

    def refine_probs(self, images: List[np.ndarray],
                     probs: List[np.ndarray]) -> List[np.ndarray]:
        """As :meth:`refine`, but the CRF's (C, H, W) float32 probabilities
        come back (a CRF inside training that needs its confidence: RRM's
        reliable label). Blocking, over the pool when ``workers > 1``."""
        if len(images) != len(probs):
            raise ValueError(f'{len(images)} images but {len(probs)} '
                             'probability maps')
        if self.torch_crf is not None:
            return self.torch_crf.refine(images, probs)
        if self.workers > 1 and len(images) > 1:
            return self._get_pool(return_label=False).map(zip(images, probs))
        return [self.crf(i, p) for i, p in zip(images, probs)]

    # Asynchronous -------------------------------------------------------
    def submit(self, key: Hashable, sample: SegDataSample) -> None:
        """Queue the refinement of one sample.

        Reads the image now; blocks while ``2 * workers`` tasks are in
        flight. With ``workers == 0`` the CRF runs here.

        Args:
            key (Hashable): Returned with the label.
            sample (SegDataSample): With ``img_path`` and ``seg_logits``
                (it is not changed; write the label with :meth:`assign`).
        """
        image, probs = self.inputs(sample)
        self._get_pool().submit(key, image, probs)

    def results(self) -> Iterator[Tuple[Hashable, np.ndarray]]:
        """Yield ``(key, label)`` for the tasks finished so far (no waiting).

        Labels are (H, W) int64. A failed task raises its exception here.
        """
        if self._pool is not None:
            for key, label in self._pool.results():
                yield key, np.asarray(label, dtype=np.int64)

    def drain(self) -> Iterator[Tuple[Hashable, np.ndarray]]:
        """Yield ``(key, label)`` for every uncollected task, waiting for
        the running ones (finished ones first, then in submission order).

        Each output leaves the queue before it is yielded, so a caller may
        stop early (e.g. once the task it waits for is back).
        """
        if self._pool is not None:
            for key, label in self._pool.drain():
                yield key, np.asarray(label, dtype=np.int64)

    def __len__(self) -> int:
        """int: Submitted tasks whose label has not been collected yet."""
        return 0 if self._pool is None else len(self._pool)

    # Worker pool --------------------------------------------------------
    def _get_pool(self, return_label: bool = True) -> CRFPool:
        if not return_label:
            # Probabilities (refine_probs): a pool of its own.
            if self._probs_pool is None:
                self._probs_pool = CRFPool(
                    self._pool_crf,
                    num_workers=self.workers,
                    return_label=False)
            return self._probs_pool
        if self._pool is None:
            self._pool = CRFPool(
                self._pool_crf, num_workers=self.workers, return_label=True)
        return self._pool

    @property
    def _pool_crf(self):
        """What the pool runs per image (the PyTorch CRF inline)."""
        return self.crf if self.torch_crf is None else self.torch_crf

    def start(self) -> None:
        """Start the worker pool now (otherwise it starts at first use)."""
        self._get_pool()

    def close(self) -> None:
        """Stop the workers after their queued tasks; uncollected labels are
        dropped. A later call starts a new pool."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._probs_pool is not None:
            self._probs_pool.close()
            self._probs_pool = None

    def terminate(self) -> None:
        """Stop the workers at once (after an error)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None
        if self._probs_pool is not None:
            self._probs_pool.terminate()
            self._probs_pool = None

    def __getstate__(self) -> Dict[str, Any]:
        # A copy (deepcopy, pickle) gets no worker pool: it starts its own.
        state = self.__dict__.copy()
        state['_pool'] = state['_probs_pool'] = None
        return state
