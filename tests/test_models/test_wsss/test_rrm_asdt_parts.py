# Copyright (c) OpenMMLab. All rights reserved.
"""Parts of RRM and ASDT (#17): the reliable label and the pulse-width
alternate signal, on hand-computable inputs."""
import numpy as np
import pytest

from mmseg_wsss.models.wsss import pulse_high, rrm_reliable_label


def normalising_crf(image, scores):
    """A stand-in CRF without pairwise terms: the scores, normalised."""
    return scores / scores.sum(axis=0, keepdims=True)


def test_reliable_label_on_a_strip():
    """One present class, CAM values along a strip (hand-computed):

    cam  0.0: bg 1 -> CRF-low bg (ignore), CRF-high bg -> 0; bg sure.
    cam 0.05: CRF-high bg 0.795 < 0.8 -> unsure.
    cam 0.2, 0.5: CRF-low bg (0.2: 0.41 vs 0.2) / fg; not above the class's
        60th percentile -> unsure.
    60th percentile of the class's values > 0.1 within its CAM region
    (0.2, 0.5, 0.6, 0.7, 0.8, 0.9): sorted[int(6 * 0.6)] = 0.7; sure where
    the CAM exceeds it: 0.8 and 0.9 -> class 1.
    """
    values = np.array([0., 0.05, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9], np.float32)
    cams = np.zeros((3, 1, 8), np.float32)
    cams[1, 0] = values
    cams[2, 0] = 0.95  # an absent class: ignored
    image = np.zeros((1, 8, 3), np.uint8)
    label = rrm_reliable_label(image, cams, np.array([0, 1, 0]),
                               normalising_crf)
    assert label.tolist() == [[0, 255, 255, 255, 255, 255, 2, 2]]


def test_reliable_label_crf_unsure_and_no_class():
    cams = np.full((1, 2, 2), 0.6, np.float32)
    image = np.zeros((2, 2, 3), np.uint8)

    def flat_crf(image, scores):  # the CRF is sure of nothing
        return np.full_like(scores, 1. / scores.shape[0])

    assert (rrm_reliable_label(image, cams, np.array([1]),
                               flat_crf) == 255).all()
    # No present class: all background (the code raises).
    assert (rrm_reliable_label(image, cams, np.array([0]),
                               flat_crf) == 0).all()
    with pytest.raises(ValueError, match='labels'):
        rrm_reliable_label(image, cams, np.array([1, 0]), flat_crf)


def test_reliable_label_with_the_dense_crf():
    pytest.importorskip('pydensecrf.densecrf')
    from mmseg_wsss.models.postprocess import DenseCRF
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    cams = np.zeros((2, 24, 24), np.float32)
    cams[0, 4:16, 4:16] = 1.
    cams[0, 6:14, 6:14] = 0.9
    label = rrm_reliable_label(image, cams, np.array([1, 0]),
                               DenseCRF(preset='1stage'))
    assert label.shape == (24, 24) and label.dtype == np.int64
    assert set(np.unique(label)) <= {0, 1, 255}
    assert (label[0:2, 0:2] == 0).all()  # far from the object: background


def test_pulse_high_matches_the_released_wave():
    """The code: high when (iter // 25) % 6 == 0 (T 150, N 6)."""
    for it in range(0, 1000, 7):
        assert pulse_high(it, 150, 25) == ((it // 25) % 6 == 0)
    # Paper set-up: T 150, tau 5 -> T_h 30.
    assert [pulse_high(i, 150, 30) for i in (0, 29, 30, 149, 150)] == \
        [True, True, False, False, True]
    assert not pulse_high(5, 10, 0) and pulse_high(5, 10, 10)
    with pytest.raises(ValueError):
        pulse_high(0, 150, 151)
