# Copyright (c) OpenMMLab. All rights reserved.
"""The PyTorch dense CRF (#19 item 1): the permutohedral lattice on cases
worked by hand, and agreement with pydensecrf on smooth random scenes."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmseg_wsss.models.postprocess import (CRFPostProcessor, DenseCRF,
                                           PermutohedralLattice, TorchDenseCRF)
from mmseg_wsss.models.postprocess import permutohedral

pytestmark = pytest.mark.usefixtures('one_thread')


def test_single_point_weights_and_filter():
    """One point: the weights are barycentric (>= 0, sum 1) over the d + 1
    vertices of its simplex; the slice of the unblurred splat would be
    ``alpha * sum_j w_j^2`` (alpha = 1 / (1 + 2^-d)); the blur only moves
    mass between the simplex's vertices (neighbours of each other), so the
    filtered value is at least that and scales linearly."""
    for d in (2, 5):
        lat = PermutohedralLattice(torch.rand(1, d) * 10)
        w = lat.weights[0]
        assert lat.num_vertices == d + 1
        assert (w >= 0).all()
        torch.testing.assert_close(w.sum(), torch.tensor(1.))
        out = lat.filter(torch.tensor([[1.], [2.]])[:1])
        alpha = 1. / (1 + 2.**-d)
        assert alpha * (w**2).sum() <= out.item()
        torch.testing.assert_close(lat.filter(torch.tensor([[2.]])), 2 * out)


def test_lattice_point_on_a_vertex():
    """A point at the origin sits on a lattice vertex: weight 1 there."""
    lat = PermutohedralLattice(torch.zeros(1, 2))
    assert sorted(lat.weights[0].tolist()) == [0., 0., 1.]


def test_groups_never_interact_and_close_points_do():
    f = torch.tensor([[0., 0.], [0.1, 0.], [0., 0.1]])
    lat = PermutohedralLattice(f, torch.tensor([0, 0, 1]))
    out = lat.filter(torch.tensor([[1.], [0.], [0.]]))
    assert out[1] > 0  # same group, close by
    assert out[2] == 0  # the other image
    # The same points in one group: the third one now receives.
    assert PermutohedralLattice(f).filter(torch.tensor([[1.], [0.],
                                                        [0.]]))[2] > 0


def test_filter_is_linear():
    gen = torch.Generator().manual_seed(0)
    f = torch.rand(200, 5, generator=gen) * 4
    lat = PermutohedralLattice(f)
    a, b = torch.rand(200, 3, generator=gen), torch.rand(200, 3, generator=gen)
    torch.testing.assert_close(
        lat.filter(2 * a + b), 2 * lat.filter(a) + lat.filter(b))
    # Not exactly symmetric: the blur runs the axes in one order (the
    # code's ``reverse`` runs them backwards for the transpose).


def _compare_key_rows(monkeypatch):
    """Make every lattice built from now on compare its key rows whole
    instead of packing them into one int64 (the codec's fallback)."""
    orig = permutohedral._Codec.__init__

    def no_pack(self, keys, margin):
        orig(self, keys, margin)
        self.ok = False

    monkeypatch.setattr(permutohedral._Codec, '__init__', no_pack)


def test_codec_and_row_lookup_agree(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    f = torch.rand(300, 5, generator=gen) * 30
    v = torch.rand(300, 2, generator=gen)
    packed = PermutohedralLattice(f).filter(v)
    _compare_key_rows(monkeypatch)
    rows = PermutohedralLattice(f).filter(v)
    torch.testing.assert_close(packed, rows)


def _scene(rng, classes, height, width):
    """A smooth random image and softmax probabilities (objects with
    edges), the kind of input a CRF refines."""

    def smooth(channels):
        x = torch.from_numpy(
            rng.standard_normal(
                (1, channels, height // 8 + 1, width // 8 + 1)))
        return F.interpolate(x, size=(height, width), mode='bilinear')[0]

    image = (smooth(3) * 60 + 128).clamp(0, 255).byte().permute(1, 2, 0)
    probs = (smooth(classes) * 3).softmax(0).float().numpy()
    return image.numpy().copy(), probs


@pytest.mark.parametrize('preset,xy_scale,size,classes',
                         [('toco', 1.0, (60, 80), 21),
                          ('1stage', 96 / 448, (96, 96), 10),
                          ('rrm', 96 / 448, (50, 70), 3),
                          ('toco_cam', 96 / 448, (64, 48), 4)])
def test_agrees_with_pydensecrf(preset, xy_scale, size, classes):
    pytest.importorskip('pydensecrf.densecrf')
    rng = np.random.default_rng(0)
    crf = DenseCRF(preset=preset, xy_scale=xy_scale)
    torch_crf = TorchDenseCRF(crf.params)
    scenes = [_scene(rng, classes, *size) for _ in range(3)]
    want = [crf(i, p) for i, p in scenes]
    got = torch_crf.refine(*zip(*scenes))  # one batch
    for w, g, (_, p) in zip(want, got, scenes):
        assert g.shape == w.shape and g.dtype == np.float32
        agree = (w.argmax(0) == g.argmax(0)).mean()
        assert agree >= 0.999, agree
        assert np.abs(w - g).max() < 1e-2
        assert (w.argmax(0) != p.argmax(0)).any()  # the CRF did something
    # One image at a time gives the batch's result.
    np.testing.assert_allclose(torch_crf(*scenes[1]), got[1], atol=1e-5)


def test_post_processor_torch_backend():
    rng = np.random.default_rng(2)
    images, probs = zip(*[_scene(rng, 4, 40, 30) for _ in range(3)])
    post = CRFPostProcessor.build(
        dict(enable=True, preset='rrm', backend='torch', workers=4))
    assert post.workers == 0 and post.backend == 'torch'
    labels = post.refine(list(images), list(probs))
    refined = post.refine_probs(list(images), list(probs))
    for label, prob in zip(labels, refined):
        assert label.dtype == np.int64
        np.testing.assert_array_equal(label, prob.argmax(0))
    if pytest.importorskip('pydensecrf.densecrf'):
        pyd = CRFPostProcessor(preset='rrm', workers=0)
        for a, b in zip(labels, pyd.refine(list(images), list(probs))):
            assert (a == b).mean() >= 0.999
    with pytest.raises(ValueError, match='backend'):
        CRFPostProcessor(preset='rrm', backend='cuda-crf')


def test_benchmark_crf_torch_backend(capsys):
    """tools/analysis_tools/benchmark_crf.py --backend torch prints the
    throughput and, with pydensecrf, the agreement."""
    import importlib.util
    import os.path as osp

    from conftest import REPO_ROOT
    path = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'benchmark_crf.py')
    spec = importlib.util.spec_from_file_location('benchmark_crf', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([
        '--backend', 'torch', '--preset', 'rrm', '--height', '24', '--width',
        '32', '--num-classes', '3', '--num-images', '3', '--batch-size', '2',
        '--threads', '1'
    ]) == 0
    out = capsys.readouterr().out
    assert 'torch: ' in out and 'img/s' in out
    if 'agreement: skipped' not in out:
        share = float(
            out.split('agreement with it on 3 images: ')[1].split()[0])
        assert share >= 99.9


@pytest.mark.filterwarnings('ignore:Sparse CSR tensor support')
@pytest.mark.parametrize('packed', [True, False])
def test_sparse_matrices_are_valid(monkeypatch, packed):
    """The splat, blur and slice matrices pass PyTorch's CSR invariant
    checks (they are built with the checks off), across groups and with
    either key encoding."""
    built = []

    def checked(crow, col, values, size):
        built.append(size)
        return torch.sparse_csr_tensor(
            crow, col, values, size, check_invariants=True)

    monkeypatch.setattr(permutohedral, '_csr', checked)
    if not packed:
        _compare_key_rows(monkeypatch)
    gen = torch.Generator().manual_seed(3)
    for d in (2, 5):
        f = torch.rand(500, d, generator=gen) * 20
        groups = torch.randint(0, 3, (500, ), generator=gen)
        lat = PermutohedralLattice(f, groups)
        assert lat.filter(torch.rand(500, 2, generator=gen)).shape == (500, 2)
        # float64 values are filtered in float64
        assert lat.filter(torch.rand(500, 1,
                                     dtype=torch.float64)).dtype == \
            torch.float64
    assert len(built) == 2 * 2 + 3 + 6  # splat + slice, d + 1 blurs each
