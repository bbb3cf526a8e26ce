# Copyright (c) OpenMMLab. All rights reserved.
"""Fully connected CRF (dense CRF) post-processing on the CPU.

:class:`DenseCRF` refines one image's class probabilities with ``pydensecrf``
(installed by the ``crf`` extra, package ``pydensecrf2``); :class:`CRFPool`
runs it over many images in parallel worker processes. Both work on numpy
arrays only, so they can be used from a process that imported torch (also
after CUDA was initialised: the workers never touch torch).

Typical use during testing (one image at its original resolution)::

    crf = DenseCRF(preset='toco')
    with CRFPool(crf, num_workers=4, return_label=True) as pool:
        for key, image, probs in samples:   # (H, W, 3) uint8, (C, H, W)
            pool.submit(key, image, probs)
            for done_key, label in pool.results():   # finished so far
                ...
        for done_key, label in pool.drain():         # the rest
            ...
"""
import multiprocessing as mp
from collections import deque
from typing import (Any, Deque, Dict, Hashable, Iterable, Iterator, List,
                    Optional, Sequence, Tuple)

import numpy as np
from mmseg.registry import TASK_UTILS

# Named parameter sets of the public implementations (all 10 mean-field
# iterations; xy standard deviations in pixels of the full-size image).
CRF_PRESETS: Dict[str, Dict[str, float]] = {
    # ToCo / DuPL / FSR test-time CRF.
    'toco':
    dict(iters=10, pos_xy_std=1, pos_w=1, bi_xy_std=121, bi_rgb_std=5, bi_w=4),
    # ToCo's CRF for CAM pseudo labels.
    'toco_cam':
    dict(iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=36, bi_rgb_std=3, bi_w=4),
    # 1Stage test-time CRF; also RRM's training (reliable label) CRF.
    '1stage':
    dict(
        iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10),
    # RRM / ASDT test-time CRF.
    'rrm':
    dict(iters=10, pos_xy_std=3, pos_w=3, bi_xy_std=83, bi_rgb_std=5, bi_w=4),
}

_PARAM_KEYS = ('iters', 'pos_xy_std', 'pos_w', 'bi_xy_std', 'bi_rgb_std',
               'bi_w')
# Probabilities are clipped to this before -log(): log(0) would be -inf.
_PROB_CLIP = 1e-5
_MISSING_MSG = ('DenseCRF needs pydensecrf (PyPI package "pydensecrf2"); '
                'install it with: pip install "mmseg_wsss[crf]"')


def _import_pydensecrf() -> Tuple[Any, Any]:
    """Import ``pydensecrf.densecrf`` and ``pydensecrf.utils`` lazily.

    Lazy so that the package imports without the optional extra.

    Returns:
        tuple: the ``densecrf`` and ``utils`` modules.

    Raises:
        ImportError: if pydensecrf is not installed.
    """
    try:
        import pydensecrf.densecrf as densecrf
        import pydensecrf.utils as crf_utils
    except ImportError as exc:
        raise ImportError(_MISSING_MSG) from exc
    return densecrf, crf_utils


@TASK_UTILS.register_module()
class DenseCRF:
    """Dense CRF refinement of per-pixel class probabilities.

    The energy has a unary term ``-log(p)`` plus two Potts pairwise terms:
    an appearance-free Gaussian kernel (``pos_xy_std``, weight ``pos_w``)
    that removes small isolated regions, and a bilateral kernel on position
    and RGB colour (``bi_xy_std``, ``bi_rgb_std``, weight ``bi_w``) that
    aligns label boundaries with image edges.

    Build from a preset and/or explicit values (explicit values win)::

        DenseCRF(preset='toco')
        DenseCRF(preset='rrm', iters=5)
        TASK_UTILS.build(dict(type='DenseCRF', preset='toco'))

    Args:
        preset (str, optional): one of :data:`CRF_PRESETS` ('toco',
            'toco_cam', '1stage', 'rrm'). Without a preset every parameter
            must be given.
        iters (int, optional): mean-field iterations.
        pos_xy_std (float, optional): xy std of the Gaussian kernel (pixels).
        pos_w (float, optional): weight (Potts compatibility) of the
            Gaussian kernel.
        bi_xy_std (float, optional): xy std of the bilateral kernel (pixels).
        bi_rgb_std (float, optional): RGB std of the bilateral kernel.
        bi_w (float, optional): weight of the bilateral kernel.
        xy_scale (float): factor for the two xy stds, for images smaller
            than the ones the settings were tuned on (e.g. ``size / 448``
            for toy data). When it is not 1 each xy std becomes
            ``max(1, round(std * xy_scale))`` (Python's ``round``, halves to
            even), so e.g. 121 -> 26 and 1 -> 1 at ``96 / 448``. With 1 the
            stds are used unchanged. Colour std and weights never scale.
    """

    def __init__(self,
                 preset: Optional[str] = None,
                 iters: Optional[int] = None,
                 pos_xy_std: Optional[float] = None,
                 pos_w: Optional[float] = None,
                 bi_xy_std: Optional[float] = None,
                 bi_rgb_std: Optional[float] = None,
                 bi_w: Optional[float] = None,
                 xy_scale: float = 1.0) -> None:
        params: Dict[str, Any] = {}
        if preset is not None:
            if preset not in CRF_PRESETS:
                raise ValueError(f'unknown CRF preset {preset!r}; available '
                                 f'presets: {sorted(CRF_PRESETS)}')
            params.update(CRF_PRESETS[preset])
        overrides = dict(
            iters=iters,
            pos_xy_std=pos_xy_std,
            pos_w=pos_w,
            bi_xy_std=bi_xy_std,
            bi_rgb_std=bi_rgb_std,
            bi_w=bi_w)
        params.update({k: v for k, v in overrides.items() if v is not None})
        missing = [k for k in _PARAM_KEYS if k not in params]
        if missing:
            raise ValueError(f'DenseCRF parameters {missing} are not set; '
                             'pass them or choose a preset from '
                             f'{sorted(CRF_PRESETS)}')
        if xy_scale <= 0:
            raise ValueError(f'xy_scale must be positive, got {xy_scale}')
        if int(params['iters']) < 1:
            raise ValueError(f'iters must be >= 1, got {params["iters"]}')
        params['iters'] = int(params['iters'])
        if xy_scale != 1.0:
            for key in ('pos_xy_std', 'bi_xy_std'):
                params[key] = max(1, int(round(params[key] * xy_scale)))
        self.preset = preset
        self.xy_scale = xy_scale
        self._params = params

    @property
    def params(self) -> Dict[str, Any]:
        """dict: the resolved parameters (a copy), keys ``iters, pos_xy_std,
        pos_w, bi_xy_std, bi_rgb_std, bi_w``."""
        return {k: self._params[k] for k in _PARAM_KEYS}

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v}' for k, v in self.params.items())
        return f'{self.__class__.__name__}({args})'

    @staticmethod
    def _check_inputs(image: np.ndarray,
                      probs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        image = np.asarray(image)
        probs = np.asarray(probs)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError('image must be an (H, W, 3) uint8 RGB array, got '
                             f'shape {image.shape} dtype {image.dtype}')
        if probs.ndim != 3 or probs.shape[0] < 1:
            raise ValueError('probs must be a (C, H, W) array of class '
                             f'probabilities, got shape {probs.shape}')
        if probs.shape[1:] != image.shape[:2]:
            raise ValueError(
                f'probs (C, H, W) = {probs.shape} and image (H, W, 3) = '
                f'{image.shape} must have the same H and W')
        if not np.issubdtype(probs.dtype, np.floating):
            raise ValueError('probs must be a floating point array, got '
                             f'dtype {probs.dtype}')
        return image, probs

    def __call__(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Refine the probabilities of one image.

        Args:
            image (np.ndarray): (H, W, 3) uint8 RGB image (not normalised).
            probs (np.ndarray): (C, H, W) float class probabilities (each
                pixel sums to 1, e.g. a softmax). Zeros are clipped to 1e-5.

        Returns:
            np.ndarray: (C, H, W) float32 refined probabilities; each pixel
            is a distribution over the C classes.
        """
        image, probs = self._check_inputs(image, probs)
        densecrf, crf_utils = _import_pydensecrf()
        num_classes, height, width = probs.shape
        p = self._params
        crf = densecrf.DenseCRF2D(width, height, num_classes)
        unary = crf_utils.unary_from_softmax(
            probs.astype(np.float32, copy=False), clip=_PROB_CLIP)
        crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
        crf.addPairwiseGaussian(sxy=p['pos_xy_std'], compat=p['pos_w'])
        crf.addPairwiseBilateral(
            sxy=p['bi_xy_std'],
            srgb=p['bi_rgb_std'],
            rgbim=np.ascontiguousarray(image),
            compat=p['bi_w'])
        q = crf.inference(p['iters'])
        return np.asarray(
            q, dtype=np.float32).reshape(num_classes, height, width)

    def label(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Refine and take the argmax; see :meth:`__call__` for the inputs.

        Returns:
            np.ndarray: (H, W) label map, uint8 if C <= 256 else int64.
        """
        return _to_label(self(image, probs))


def _to_label(probs: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) argmax, as uint8 when the ids fit."""
    label = probs.argmax(axis=0)
    return label.astype(np.uint8 if probs.shape[0] <= 256 else np.int64)


# The CRF of a worker process, set once by the pool initializer so that a
# task carries only its two arrays.
_WORKER_CRF: Optional[DenseCRF] = None


def _init_worker(crf: DenseCRF) -> None:
    global _WORKER_CRF
    _WORKER_CRF = crf


def _run_task(image: np.ndarray, probs: np.ndarray,
              return_label: bool) -> np.ndarray:
    out = _WORKER_CRF(image, probs)
    return _to_label(out) if return_label else out


class _Inline:
    """Stand-in for an ``AsyncResult`` when ``num_workers=0``."""

    def __init__(self, value: np.ndarray) -> None:
        self._value = value

    def ready(self) -> bool:
        return True

    def get(self) -> np.ndarray:
        return self._value


class CRFPool:
    """Run a :class:`DenseCRF` over many images in CPU worker processes.

    Tasks are queued with :meth:`submit` and collected, tagged with their
    key, from :meth:`results` (what has finished, without waiting) or
    :meth:`drain` (everything, waiting). At most ``max_in_flight`` tasks
    run or wait in the pool; :meth:`submit` blocks on the oldest one when
    the bound is reached, which bounds the memory held by inputs. Finished
    outputs are kept until collected, so call :meth:`results` regularly
    (or use ``return_label=True``: an (H, W) map instead of (C, H, W)
    float32 probabilities, e.g. 0.2 MB instead of 16 MB for a 500x375 VOC
    image with 21 classes).

    Workers are forked where the platform allows it (fast start, nothing
    pickled but the task arrays), otherwise spawned (each worker then
    imports this package once). Tasks carry numpy arrays only, so the
    calling process may have torch/CUDA initialised.

    Args:
        crf (DenseCRF): the CRF to run.
        num_workers (int): worker processes; 0 runs every task inline in the
            calling process, at :meth:`submit`.
        return_label (bool): return the argmax label map (H, W) (uint8 if
            C <= 256, else int64) instead of the (C, H, W) probabilities.
        max_in_flight (int, optional): bound on queued + running tasks.
            Defaults to ``2 * num_workers``.
        start_method (str, optional): multiprocessing start method; defaults
            to 'fork' where available, else 'spawn'.

    Example:
        >>> crf = DenseCRF(preset='toco')
        >>> with CRFPool(crf, num_workers=2) as pool:
        ...     refined = pool.map([(image, probs), (image2, probs2)])
    """

    def __init__(self,
                 crf: DenseCRF,
                 num_workers: int = 2,
                 return_label: bool = False,
                 max_in_flight: Optional[int] = None,
                 start_method: Optional[str] = None) -> None:
        if num_workers < 0:
            raise ValueError(f'num_workers must be >= 0, got {num_workers}')
        self.crf = crf
        self.num_workers = num_workers
        self.return_label = return_label
        self.max_in_flight = max(1, max_in_flight or 2 * num_workers)
        self._pending: Deque[Tuple[Hashable, Any]] = deque()
        self._done: Deque[Tuple[Hashable, np.ndarray]] = deque()
        self._pool = None
        if num_workers > 0:
            # Fail in the caller, not in every worker, if the extra is absent.
            _import_pydensecrf()
            if start_method is None:
                start_method = ('fork' if 'fork' in mp.get_all_start_methods()
                                else 'spawn')
            ctx = mp.get_context(start_method)
            self._pool = ctx.Pool(
                num_workers, initializer=_init_worker, initargs=(crf, ))

    def __len__(self) -> int:
        """int: submitted tasks whose output has not been collected yet."""
        return len(self._pending) + len(self._done)

    def submit(self, key: Hashable, image: np.ndarray,
               probs: np.ndarray) -> None:
        """Queue the refinement of one image.

        Args:
            key (Hashable): returned with the output (e.g. the image path).
            image (np.ndarray): (H, W, 3) uint8 RGB image.
            probs (np.ndarray): (C, H, W) float class probabilities.
        """
        if self._pool is None and self.num_workers > 0:
            raise RuntimeError('CRFPool is closed')
        # Check here: a bad input should fail at its call site, not later.
        image, probs = DenseCRF._check_inputs(image, probs)
        # float32 halves what is pickled to the worker for float64 inputs.
        probs = np.ascontiguousarray(probs, dtype=np.float32)
        image = np.ascontiguousarray(image)
        if self._pool is None:
            out = self.crf(image, probs)
            out = _to_label(out) if self.return_label else out
            self._pending.append((key, _Inline(out)))
        else:
            while len(self._pending) >= self.max_in_flight:
                old_key, res = self._pending.popleft()
                self._done.append((old_key, res.get()))
            self._pending.append(
                (key,
                 self._pool.apply_async(_run_task,
                                        (image, probs, self.return_label))))

    def results(self) -> Iterator[Tuple[Hashable, np.ndarray]]:
        """Yield ``(key, output)`` for the tasks finished so far.

        Does not wait for running tasks. Outputs are (C, H, W) float32
        probabilities, or (H, W) label maps with ``return_label=True``.
        A failed task raises its exception here.
        """
        while self._done:
            yield self._done.popleft()
        # Finished tasks may be behind a running one, so look at them all.
        # Each is removed before it is yielded: a caller that stops early
        # loses nothing.
        while True:
            ready = [
                i for i, (_, res) in enumerate(self._pending) if res.ready()
            ]
            if not ready:
                return
            key, res = self._pending[ready[0]]
            del self._pending[ready[0]]
            yield key, res.get()

    def drain(self) -> Iterator[Tuple[Hashable, np.ndarray]]:
        """Yield ``(key, output)`` for every uncollected task, waiting for
        the running ones (finished ones first, then in submission order)."""
        yield from self.results()
        while self._pending:
            key, res = self._pending[0]
            out = res.get()
            self._pending.popleft()
            yield key, out

    def map(self,
            items: Iterable[Tuple[np.ndarray, np.ndarray]],
            progress: bool = False) -> List[np.ndarray]:
        """Refine a sequence of ``(image, probs)`` pairs.

        The items are consumed lazily (a generator keeps at most
        ``max_in_flight`` inputs alive).

        Args:
            items (Iterable[tuple]): ``(image, probs)`` pairs as for
                :meth:`submit`.
            progress (bool): show an ``mmengine`` progress bar.

        Returns:
            list[np.ndarray]: the outputs in the order of ``items``.
        """
        if len(self):
            raise RuntimeError('CRFPool.map needs an empty pool; collect the '
                               'submitted tasks with drain() first')
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            total = len(items) if isinstance(items, Sequence) else 0
            bar = ProgressBar(total)
        outputs: Dict[int, np.ndarray] = {}

        def collect(it: Iterator[Tuple[Hashable, np.ndarray]]) -> None:
            for idx, out in it:
                outputs[idx] = out
                if bar is not None:
                    bar.update()

        try:
            n = 0
            for n, (image, probs) in enumerate(items, 1):
                self.submit(n - 1, image, probs)
                collect(self.results())
            collect(self.drain())
        except BaseException:
            # Leave nothing of this call behind for a later user of the pool.
            self._pending.clear()
            self._done.clear()
            raise
        if bar is not None:
            bar.file.write('\n')
        return [outputs[i] for i in range(n)]

    def close(self) -> None:
        """Stop the workers after the queued tasks (uncollected outputs are
        dropped)."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
        self._pending.clear()
        self._done.clear()

    def terminate(self) -> None:
        """Stop the workers at once."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self._pending.clear()
        self._done.clear()

    def __enter__(self) -> 'CRFPool':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # After an error queued tasks are of no use: do not wait for them.
        if exc_type is None:
            self.close()
        else:
            self.terminate()

    def __del__(self) -> None:
        pool = getattr(self, '_pool', None)
        if pool is not None:
            try:
                pool.terminate()
            except Exception:  # interpreter shutdown: nothing left to do
                pass
