# Copyright (c) OpenMMLab. All rights reserved.
"""RRM's reliable pseudo label (AAAI 2020; ASDT's baseline).

official_code_notes 5.1 (``zbf1991/RRM`` ``tool/myTool.py
compute_seg_label``): a CAM label is refined by two dense CRFs with a weak
(``(1 - max CAM)^4``) and a strong (``^32``) background, and only the pixels
that both the CAMs and the CRFs are sure of are kept. Numpy, one image at a
time: the CRF runs on the CPU (pydensecrf), so the function is what a pool
of worker processes maps over a batch.
"""
from typing import Callable, List, Sequence

import numpy as np

IGNORE_INDEX = 255
CRF = Callable[[np.ndarray, np.ndarray], np.ndarray]


def rrm_crf_scores(cams: np.ndarray, present: np.ndarray,
                   power: float) -> np.ndarray:
    """The scores RRM's CRF refines: ``[(1 - max M)^power, M_present]``.

    Args:
        cams (ndarray): (C, H, W) max-normalised foreground CAMs.
        present (ndarray): (C, ) bool, the image's classes (at least one).
        power (float): Background power (the code's ``crf_la`` 4 /
            ``crf_ha`` 32).

    Returns:
        ndarray: (1 + P, H, W) float32 scores, P = present classes (the
        code's ``_crf_with_alpha`` input; not normalised, as the code).
    """
    v = cams[present]
    bg = np.power(1 - v.max(axis=0, keepdims=True), power)
    return np.concatenate([bg, v]).astype(np.float32)


def _expand(q: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(1 + P, H, W) CRF output -> (C + 1, H, W), absent classes zero."""
    out = np.zeros((present.shape[0] + 1, ) + q.shape[1:], np.float32)
    out[0] = q[0]
    out[1 + np.flatnonzero(present)] = q[1:]
    return out


def _check(cams: np.ndarray, cls_label: np.ndarray) -> tuple:
    cams = np.asarray(cams, np.float32)
    present = np.asarray(cls_label).reshape(-1) > 1e-5
    if cams.ndim != 3 or present.shape[0] != cams.shape[0]:
        raise ValueError(f'cams {cams.shape} must be (C, H, W) with C = '
                         f'{present.shape[0]} labels')
    return cams, present


def rrm_crf_inputs(
    cams: np.ndarray,
    cls_label: np.ndarray,
    crf_powers: Sequence[float] = (4, 32)
) -> List[np.ndarray]:
    """The CRF inputs of :func:`rrm_label_from_crf`, one per power (none
    when no class is present): what a pool of CRF workers maps over a
    batch (:func:`rrm_crf_scores`)."""
    cams, present = _check(cams, cls_label)
    if not present.any():
        return []
    return [rrm_crf_scores(cams, present, power) for power in crf_powers]


def rrm_reliable_label(image: np.ndarray,
                       cams: np.ndarray,
                       cls_label: np.ndarray,
                       crf: CRF,
                       bg_power: float = 32,
                       crf_powers: Sequence[float] = (4, 32),
                       percentile: float = 0.6,
                       min_cam: float = 0.1,
                       bg_sure_thr: float = 0.8,
                       crf_sure_thr: float = 0.8,
                       ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """RRM's reliable segmentation label of one image.

    With the present classes' normalised CAMs ``M`` (absent ones zero) and
    ``bg = (1 - max_c M_c)^bg_power``:

    1. ``cam_img = argmax([bg, M])``;
    2. CRFs of ``[(1 - max M)^a, M_present]`` with ``a`` = 4 (``la``) and 32
       (``ha``); label = ``argmax(la)``, background of ``la`` -> ignore,
       then background of ``ha`` -> background;
    3. CAM-sure pixels: per class ``c`` present in ``argmax(la)``, where
       ``M_c`` (zeroed outside ``cam_img == c``) exceeds the
       ``percentile``-th value of its values above ``min_cam`` (the code's
       ``sorted[int(n * 0.6)]``, strict ``>``); background where ``bg``
       (zeroed outside ``cam_img == 0``) exceeds ``bg_sure_thr``;
    4. CRF-unsure pixels: ``max([ha_bg, la_fg...]) < crf_sure_thr``;
    5. pixels not CAM-sure or CRF-unsure -> ignore.

    Choices where the code is silent or fails: an image without a present
    class is all background (the code's ``max`` of an empty array raises);
    a class of ``argmax(la)`` without a CAM value above ``min_cam`` has no
    sure pixel (the code's index raises).

    Args:
        image (ndarray): (H, W, 3) uint8 RGB image (the CRF's).
        cams (ndarray): (C, H, W) foreground CAMs, max-normalised per class,
            at the image's resolution.
        cls_label (ndarray): (C, ) image labels (> 1e-5: present).
        crf (callable): ``crf(image, scores (K, H, W)) -> (K, H, W)``
            probabilities, e.g. ``DenseCRF(preset='1stage')`` (RRM's
            training CRF: Gaussian 3/3, bilateral 80/13/10, 10 iterations;
            unnormalised scores are clipped and ``-log``-ed as the code's
            ``unary_from_softmax``).
        bg_power (float): Defaults to 32.
        crf_powers (tuple[float, float]): (low, high) background powers of
            the CRFs. Defaults to (4, 32).
        percentile (float): Defaults to 0.6.
        min_cam (float): Defaults to 0.1.
        bg_sure_thr (float): Defaults to 0.8.
        crf_sure_thr (float): Defaults to 0.8.
        ignore_index (int): Defaults to 255.

    Returns:
        ndarray: (H, W) int64 label: 0 background, ``c + 1`` class ``c``,
        ``ignore_index`` unsure.
    """
    crf_inputs = rrm_crf_inputs(cams, cls_label, crf_powers)
    crf_outputs = [crf(image, scores) for scores in crf_inputs]
    return rrm_label_from_crf(
        cams,
        cls_label,
        crf_outputs,
        bg_power=bg_power,
        percentile=percentile,
        min_cam=min_cam,
        bg_sure_thr=bg_sure_thr,
        crf_sure_thr=crf_sure_thr,
        ignore_index=ignore_index)


def rrm_label_from_crf(cams: np.ndarray,
                       cls_label: np.ndarray,
                       crf_outputs: Sequence[np.ndarray],
                       bg_power: float = 32,
                       percentile: float = 0.6,
                       min_cam: float = 0.1,
                       bg_sure_thr: float = 0.8,
                       crf_sure_thr: float = 0.8,
                       ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Steps 1 and 3-5 of :func:`rrm_reliable_label`, given the CRF
    outputs of :func:`rrm_crf_inputs` (low power first).

    Args:
        cams (ndarray): (C, H, W) max-normalised foreground CAMs.
        cls_label (ndarray): (C, ) image labels.
        crf_outputs (Sequence[ndarray]): The CRF's (1 + P, H, W)
            probabilities of the two inputs (empty when no class is
            present).
        bg_power, percentile, min_cam, bg_sure_thr, crf_sure_thr,
        ignore_index: As :func:`rrm_reliable_label`.

    Returns:
        ndarray: (H, W) int64 label.
    """
    cams, present = _check(cams, cls_label)
    if not present.any():
        return np.zeros(cams.shape[1:], np.int64)
    if len(crf_outputs) != 2:
        raise ValueError(f'need the 2 CRF outputs (low, high background '
                         f'power), got {len(crf_outputs)}')
    cam_np = cams * present[:, None, None]
    bg = np.power(1 - cam_np.max(axis=0), bg_power)
    cam_all = np.concatenate([bg[None], cam_np])
    cam_img = cam_all.argmax(axis=0)

    crf_la, crf_ha = (
        _expand(np.asarray(q, np.float32), present) for q in crf_outputs)
    la, ha = crf_la.argmax(axis=0), crf_ha.argmax(axis=0)
    label = la.astype(np.int64)
    label[la == 0] = ignore_index

    sure = np.zeros(cam_img.shape, bool)
    for c in np.unique(la):
        score = np.where(cam_img == c, cam_all[c], 0.)
        if c == 0:
            sure |= score > bg_sure_thr
            continue
        values = np.sort(score[score > min_cam])
        if values.size:
            sure |= score > values[min(
                int(values.size * percentile), values.size - 1)]

    label[ha == 0] = 0
    confidence = np.concatenate([crf_ha[:1], crf_la[1:]]).max(axis=0)
    label[(confidence < crf_sure_thr) | ~sure] = ignore_index
    return label
