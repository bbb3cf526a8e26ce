# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's adaptive noise filtering (``models/wsss/noise_filter.py``) with
both mixture backends."""
import pytest
import torch

from mmseg_wsss.models.wsss.noise_filter import filter_noisy_labels

pytestmark = pytest.mark.usefixtures('one_thread')

IGNORE = 255
BACKENDS = ('sklearn', 'torch')
S = 64  # 4096 px a map


def planted_map(seed: int,
                num_fg: int = 2400,
                num_noisy: int = 600,
                noise_mean: float = 2.5,
                num_ignore: int = 300):
    """One (S, S) loss map and label: background 0 with large losses,
    ignore pixels, foreground class 7 with clean losses ~ N(0.4, 0.1^2) and
    ``num_noisy`` of them ~ N(noise_mean, 0.3^2).

    Returns:
        tuple: ce (S, S) float32, label (S, S) long, noisy (S, S) bool.
    """
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(S * S, generator=gen)
    fg, ign = perm[:num_fg], perm[num_fg:num_fg + num_ignore]
    label = torch.zeros(S * S, dtype=torch.long)
    label[fg] = 7
    label[ign] = IGNORE
    # Background and ignore losses are huge: they must never matter.
    ce = 3.0 + torch.rand(S * S, generator=gen)
    ce[fg] = 0.4 + 0.1 * torch.randn(num_fg, generator=gen)
    ce[fg] = ce[fg].clamp(min=0.15)  # all clean ones qualify (> 0.1)
    noisy = torch.zeros(S * S, dtype=torch.bool)
    noisy[fg[:num_noisy]] = True
    ce[fg[:num_noisy]] = noise_mean + 0.3 * torch.randn(
        num_noisy, generator=gen)
    return ce.view(S, S), label.view(S, S), noisy.view(S, S)


@pytest.mark.parametrize('backend', BACKENDS)
def test_bimodal_map_loses_its_noisy_foreground(backend):
    ce, label, noisy = planted_map(0)
    out, mask = filter_noisy_labels(ce[None], label[None], backend=backend)
    assert out.shape == label[None].shape and out.dtype == label.dtype
    assert mask.shape == label[None].shape and mask.dtype == torch.bool
    assert torch.equal(mask[0], noisy)  # exactly the planted pixels
    assert torch.equal(out[0][noisy], torch.full_like(label[noisy], IGNORE))
    assert torch.equal(out[0][~noisy], label[~noisy])
    assert torch.equal(label, planted_map(0)[1])  # input untouched


@pytest.mark.parametrize('backend', BACKENDS)
def test_unimodal_and_small_maps_are_left_alone(backend):
    # Means gap < 1.0: a single bump, even one with high losses.
    ce, label, _ = planted_map(1, noise_mean=0.9)
    out, mask = filter_noisy_labels(ce[None], label[None], backend=backend)
    assert not mask.any() and torch.equal(out[0], label)
    # Gap below a raised threshold: same.
    ce, label, _ = planted_map(2)
    out, mask = filter_noisy_labels(
        ce[None], label[None], mean_gap=3.0, backend=backend)
    assert not mask.any()
    # Exactly min_pixels qualifying foreground pixels: not fitted; one more:
    # fitted. Foreground losses <= ce_thr do not count.
    ce, label, noisy = planted_map(3, num_fg=1300, num_noisy=300)
    fg = label == 7
    low = fg & ~noisy
    low_idx = low.flatten().nonzero().squeeze(1)
    ce.view(-1)[low_idx[:300]] = 0.05  # 1000 fg losses left above 0.1
    out, mask = filter_noisy_labels(ce[None], label[None], backend=backend)
    assert not mask.any() and torch.equal(out[0], label)
    out, mask = filter_noisy_labels(
        ce[None], label[None], min_pixels=999, backend=backend)
    assert torch.equal(mask[0], noisy)


@pytest.mark.parametrize('backend', BACKENDS)
def test_background_and_ignore_never_change(backend):
    """Even when background losses form the high mode of the foreground
    fit and every posterior is extreme, only foreground pixels move."""
    ce, label, noisy = planted_map(4, noise_mean=3.5)
    out, mask = filter_noisy_labels(ce[None], label[None], backend=backend)
    assert mask[0].any()
    assert not mask[0][label != 7].any()
    assert torch.equal(out[0][label == 0], label[label == 0])
    assert (out[0][label == IGNORE] == IGNORE).all()
    # Another ignore value: 255 is then an ordinary class, filtered too.
    label2 = label.clone()
    label2[label == IGNORE] = 254
    out2, mask2 = filter_noisy_labels(
        ce[None], label2[None], ignore_index=254, backend=backend)
    assert torch.equal(mask2, mask)
    assert (out2[mask2] == 254).all()


@pytest.mark.parametrize('backend', BACKENDS)
def test_unfitted_foreground_losses_are_judged_too(backend):
    """As the official code, the posterior is taken on all foreground
    pixels, also those with loss <= ce_thr that were not fitted: under a
    narrow clean and a wide noisy component, a loss of 0 lies deeper in the
    noisy tail and is filtered."""
    ce, label, noisy = planted_map(5)
    fg_clean = ((label == 7) & ~noisy).flatten().nonzero().squeeze(1)
    flat = ce.view(-1)
    flat[fg_clean] = 0.5 + 0.02 * torch.randn(
        len(fg_clean), generator=torch.Generator().manual_seed(0))
    noisy_idx = noisy.flatten().nonzero().squeeze(1)
    flat[noisy_idx] = 2.0 + 0.8 * torch.randn(
        len(noisy_idx), generator=torch.Generator().manual_seed(1)).abs()
    flat[fg_clean[:5]] = 0.0  # below ce_thr, not fitted
    _, mask = filter_noisy_labels(ce[None], label[None], backend=backend)
    assert mask.view(-1)[fg_clean[:5]].all()
    assert not mask.view(-1)[fg_clean[5:]].any()


def test_batch_images_are_independent_and_backends_agree():
    """Four images with different pixel counts and outcomes, filtered as a
    batch, equal their single-image results; both backends agree."""
    maps = [
        planted_map(10),  # filtered
        planted_map(11, noise_mean=0.9),  # unimodal: kept
        planted_map(12, num_fg=900, num_noisy=200),  # too few: kept
        planted_map(13, num_fg=3500, num_noisy=1200, noise_mean=2.0),
    ]
    ce = torch.stack([m[0] for m in maps])
    label = torch.stack([m[1] for m in maps])
    results = {}
    for backend in BACKENDS:
        out, mask = filter_noisy_labels(ce, label, backend=backend)
        for b in range(4):
            single = filter_noisy_labels(
                ce[b:b + 1], label[b:b + 1], backend=backend)
            assert torch.equal(out[b], single[0][0])
            assert torch.equal(mask[b], single[1][0])
        assert torch.equal(mask[0], maps[0][2])
        assert not mask[1].any() and not mask[2].any()
        assert torch.equal(mask[3], maps[3][2])
        results[backend] = mask
    assert torch.equal(results['sklearn'], results['torch'])


def test_backends_agree_on_overlapping_modes():
    """Modes 1.3 apart with wide spreads: the decisions of the two
    backends differ on at most 1 % of the foreground."""
    gen = torch.Generator().manual_seed(0)
    ce, label = [], []
    for seed in range(3):
        c, lab, noisy = planted_map(20 + seed, num_fg=3000, num_noisy=900)
        fg = lab == 7
        c[fg] = (0.5 + 0.3 * torch.randn(int(fg.sum()), generator=gen)).abs()
        c[noisy] = 1.8 + 0.5 * torch.randn(int(noisy.sum()), generator=gen)
        ce.append(c)
        label.append(lab)
    ce, label = torch.stack(ce), torch.stack(label)
    _, mask_sk = filter_noisy_labels(ce, label, backend='sklearn')
    _, mask_t = filter_noisy_labels(ce, label, backend='torch')
    assert mask_sk.any()
    fg = label == 7
    assert (mask_sk != mask_t)[fg].float().mean() <= 0.01


def test_arguments():
    ce, label, _ = planted_map(0)
    with pytest.raises(ValueError, match='backend'):
        filter_noisy_labels(ce[None], label[None], backend='numpy')
    with pytest.raises(ValueError, match='shape|must both'):
        filter_noisy_labels(ce[None], label[None, :, :-1])
    with pytest.raises(ValueError):
        filter_noisy_labels(ce, label)  # (H, W)
    with pytest.raises(ValueError):
        filter_noisy_labels(ce[None], label[None].float())
    # gmm_cfg reaches the mixture: one component never gives a gap.
    for backend in BACKENDS:
        _, mask = filter_noisy_labels(
            ce[None],
            label[None],
            backend=backend,
            gmm_cfg=dict(n_components=1))
        assert not mask.any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_torch_backend():
    maps = [planted_map(30), planted_map(31, noise_mean=0.9)]
    ce = torch.stack([m[0] for m in maps]).cuda()
    label = torch.stack([m[1] for m in maps]).cuda()
    for backend in BACKENDS:
        out, mask = filter_noisy_labels(ce, label, backend=backend)
        assert out.device == label.device and mask.device == label.device
        assert torch.equal(mask[0].cpu(), maps[0][2])
        assert not mask[1].any()
