# Copyright (c) OpenMMLab. All rights reserved.
"""The batched torch EM (``models/wsss/gaussian_mixture_1d.py``) against
``sklearn.mixture.GaussianMixture`` as DuPL configures it."""
import warnings

import numpy as np
import pytest
import torch

from mmseg_wsss.models.wsss.gaussian_mixture_1d import GaussianMixture1D

pytestmark = pytest.mark.usefixtures('one_thread')

SK_CFG = dict(
    n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=0)
SIGMA = 0.2
GAMMA = 0.95
N = 8000


def planted(mu_noise: float, frac: float, seed: int, n: int = N):
    """Clean N(0.3, 0.2^2) losses with a fraction ``frac`` of noisy
    N(mu_noise, 0.2^2) ones, shuffled (float64)."""
    rng = np.random.default_rng(seed)
    n_noise = int(round(n * frac))
    x = np.concatenate([
        rng.normal(0.3, SIGMA, n - n_noise),
        rng.normal(mu_noise, SIGMA, n_noise)
    ])
    rng.shuffle(x)
    return x


def sk_fit(x: np.ndarray):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ConvergenceWarning)
        return GaussianMixture(**SK_CFG).fit(x.reshape(-1, 1))


def noise_posterior_sk(gmm, x: np.ndarray) -> np.ndarray:
    return gmm.predict_proba(x.reshape(-1, 1))[:, gmm.means_.argmax()]


def noise_posterior_torch(gmm: GaussianMixture1D, x: torch.Tensor):
    post = gmm.predict_proba(x)
    k = gmm.means_.argmax(dim=1)
    return post.gather(2,
                       k.view(-1, 1, 1).expand(-1, x.shape[1], 1)).squeeze(-1)


@pytest.mark.parametrize('mu_noise, min_agree', [(0.6, 0.95), (0.9, 0.99)])
def test_matches_sklearn_on_planted_mixtures(mu_noise, min_agree):
    """1.5 and 3 sigma apart, several seeds and noise fractions, fitted as
    one batch: means within 0.1 sigma of scikit-learn's, filtering decisions
    (noise posterior > gamma) identical on >= 95 % / 99 % of the values."""
    cases = [(seed, frac) for seed in range(3) for frac in (0.15, 0.3, 0.45)]
    xs = [planted(mu_noise, frac, seed) for seed, frac in cases]
    x = torch.from_numpy(np.stack(xs))
    gmm = GaussianMixture1D().fit(x)
    assert gmm.fitted_.all()
    post_t = noise_posterior_torch(gmm, x).numpy()
    for b, xb in enumerate(xs):
        sk = sk_fit(xb)
        sk_means = np.sort(sk.means_.ravel())
        t_means = np.sort(gmm.means_[b].numpy())
        np.testing.assert_allclose(t_means, sk_means, atol=0.1 * SIGMA)
        agree = ((noise_posterior_sk(sk, xb) > GAMMA) == (post_t[b] > GAMMA))
        assert agree.mean() >= min_agree, (cases[b], agree.mean())
        # Same stopping iteration: the lower bounds track each other.
        assert int(gmm.n_iter_[b]) == sk.n_iter_
        assert bool(gmm.converged_[b]) == sk.converged_
        assert float(gmm.lower_bound_[b]) == pytest.approx(
            sk.lower_bound_, abs=5e-3)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_em_equals_sklearn_given_its_kmeans_labels(dtype):
    """The only difference is the k-means seed: from scikit-learn's own
    KMeans labels, the EM reproduces its fit to rounding."""
    from sklearn.cluster import KMeans
    tol = 1e-9 if dtype == np.float64 else 1e-4
    for mu_noise, seed in [(0.6, 0), (0.9, 1), (2.0, 2)]:
        x = planted(mu_noise, 0.3, seed, n=4000).astype(dtype)
        labels = KMeans(
            2, n_init=1, random_state=0).fit(x.reshape(-1, 1)).labels_
        sk = sk_fit(x)
        xt = torch.from_numpy(x)[None]
        gmm = GaussianMixture1D().fit(
            xt, init_labels=torch.from_numpy(labels.astype(np.int64))[None])
        assert gmm.means_.dtype == torch.from_numpy(x).dtype
        np.testing.assert_allclose(
            gmm.means_[0].numpy(), sk.means_.ravel(), atol=tol)
        np.testing.assert_allclose(
            gmm.variances_[0].numpy(), sk.covariances_.ravel(), atol=tol)
        np.testing.assert_allclose(
            gmm.weights_[0].numpy(), sk.weights_, atol=tol)
        assert int(gmm.n_iter_[0]) == sk.n_iter_
        np.testing.assert_allclose(
            gmm.predict_proba(xt)[0].numpy(),
            sk.predict_proba(x.reshape(-1, 1)),
            atol=10 * tol)


def test_masked_batch_equals_separate_fits():
    """Rows with different numbers of valid entries are independent
    problems; padding values do not leak into the fit."""
    sizes = [3000, 1200, 5000]
    xs = [
        planted(0.9, 0.3, seed, n=n).astype(np.float32)
        for seed, n in enumerate(sizes)
    ]
    x = torch.full((3, 6000), 1e3)  # garbage in the padding
    mask = torch.zeros(3, 6000, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    for b, xb in enumerate(xs):
        pos = torch.randperm(6000, generator=gen)[:len(xb)]
        x[b, pos] = torch.from_numpy(xb)
        mask[b, pos] = True
    batch = GaussianMixture1D().fit(x, mask)
    for b, xb in enumerate(xs):
        single = GaussianMixture1D().fit(torch.from_numpy(xb)[None])
        for name in ('means_', 'variances_', 'weights_'):
            torch.testing.assert_close(
                getattr(batch, name)[b],
                getattr(single, name)[0],
                rtol=1e-5,
                atol=1e-6)
        assert batch.n_iter_[b] == single.n_iter_[0]
    post = batch.predict_proba(x)
    assert post.shape == (3, 6000, 2)
    torch.testing.assert_close(post[mask].sum(-1), torch.ones(sum(sizes)))


def test_components_and_attributes():
    """K = 3 well separated components, sorted means; per-problem flags;
    a problem with fewer than K values is NaN and flagged."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 0.1, 2000) for m in (0.0, 2.0, 5.0)])
    xt = torch.from_numpy(rng.permutation(x))[None].repeat(2, 1)
    mask = torch.ones_like(xt, dtype=torch.bool)
    mask[1, 2:] = False  # two values for three components
    gmm = GaussianMixture1D(n_components=3, max_iter=50, tol=1e-6)
    gmm.fit(xt, mask)
    assert gmm.means_.shape == gmm.variances_.shape == (2, 3)
    assert gmm.weights_.shape == (2, 3)
    assert gmm.converged_.dtype == torch.bool and gmm.converged_.shape == (2, )
    assert gmm.fitted_.tolist() == [True, False]
    assert gmm.converged_[0] and not gmm.converged_[1]
    torch.testing.assert_close(
        gmm.means_[0],
        torch.tensor([0.0, 2.0, 5.0], dtype=torch.float64),
        atol=0.01,
        rtol=0)
    torch.testing.assert_close(
        gmm.variances_[0],
        torch.full((3, ), 0.01 + 5e-4, dtype=torch.float64),
        atol=1e-3,
        rtol=0)
    torch.testing.assert_close(gmm.weights_[0].sum(),
                               torch.tensor(1.0, dtype=torch.float64))
    assert torch.isnan(gmm.means_[1]).all()
    assert torch.isnan(gmm.predict_proba(xt)[1]).all()
    assert torch.isfinite(gmm.score_samples(xt)[0]).all()


def test_max_iter_and_convergence_flag():
    """tol=0 never converges: max_iter iterations, flag False (sklearn
    semantics: the first iteration's change is infinite)."""
    x = torch.from_numpy(planted(0.6, 0.3, 0, n=2000))[None]
    gmm = GaussianMixture1D(max_iter=4, tol=0.0).fit(x)
    assert int(gmm.n_iter_) == 4 and not bool(gmm.converged_)
    gmm = GaussianMixture1D(max_iter=1, tol=1e9).fit(x)
    assert int(gmm.n_iter_) == 1 and not bool(gmm.converged_)


def test_degenerate_and_bad_input():
    # Constant data: no NaN, one component carries everything.
    gmm = GaussianMixture1D().fit(torch.full((1, 100), 0.5))
    assert torch.isfinite(gmm.means_).all()
    assert torch.isfinite(gmm.predict_proba(torch.full((1, 3), 0.5))).all()
    with pytest.raises(ValueError):
        GaussianMixture1D().fit(torch.zeros(10))
    with pytest.raises(ValueError):
        GaussianMixture1D().fit(torch.zeros(2, 10), torch.ones(2, 9).bool())
    with pytest.raises(ValueError):
        GaussianMixture1D(n_components=0)
    with pytest.raises(RuntimeError):
        GaussianMixture1D().predict_proba(torch.zeros(1, 3))
    with pytest.raises(ValueError):
        GaussianMixture1D().fit(torch.rand(2, 10)).predict_proba(
            torch.rand(3, 10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    x = torch.from_numpy(
        np.stack([planted(0.9, f, s) for s, f in [(0, 0.2), (1, 0.4)]]))
    cpu = GaussianMixture1D().fit(x)
    gpu = GaussianMixture1D().fit(x.cuda())
    assert gpu.means_.device.type == 'cuda'
    torch.testing.assert_close(gpu.means_.cpu(), cpu.means_)
    torch.testing.assert_close(
        gpu.predict_proba(x.cuda()).cpu(), cpu.predict_proba(x))
