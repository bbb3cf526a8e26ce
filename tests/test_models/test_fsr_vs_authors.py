# Copyright (c) OpenMMLab. All rights reserved.
"""FSR's parts against the authors' code on the same inputs.

Set ``WSSS_AUTHORS_FSR`` to a checkout of Jessie459/feature-self-
reinforcement (official_code_notes section 0: commit 7f75f1c) to run these;
they are skipped otherwise. The authors' files are loaded by path at run
time (``losses.py``, ``utils/masking.py``, ``utils/pyutils.py``,
``models/projector.py``, ``models/vit.py``; they need timm and texttable),
never copied. What is compared:

* the uncertainty-guided block masking (``MaskGenerator``), random and
  uncertain phases, at FSR's geometry (448 px, 64 px blocks) and the toy's:
  the same masks from the same seed;
* the two FSR losses with their centres and the teacher temperature warm-up
  (``FSRLoss``) over 12 iterations;
* the teacher temperature and EMA momentum schedules, bit for bit;
* the DINO projector and the masked ViT with its class-token aggregation
  (``models/vit.py``) with the same weights, mapped key by key.
"""
import os.path as osp
import sys

import pytest
import torch
from authors_code import load_file, skip_without

from conftest import REPO_ROOT

from mmseg_wsss.models.backbones import WSSSViT
from mmseg_wsss.models.losses import FSRClassLoss, FSRPatchLoss
from mmseg_wsss.models.utils import DINOHead
from mmseg_wsss.models.wsss.distillation_schedules import (ema_momentum,
                                                           teacher_temperature)
from mmseg_wsss.models.wsss.uncertainty_masking import UncertaintyMasking

pytestmark = skip_without('WSSS_AUTHORS_FSR',
                          'Jessie459/feature-self-reinforcement')


def authors(relpath: str):
    return load_file('WSSS_AUTHORS_FSR', relpath)


@pytest.mark.parametrize(
    'input_size, patch, block',
    [(448, 16, 64), (96, 8, 32)],  # FSR's VOC geometry; the toy config's
    ids=['voc', 'toy'])
@pytest.mark.parametrize('phase', ['random', 'uncertain'])
def test_masking_matches_mask_generator(input_size, patch, block, phase):
    generator = authors('utils/masking.py').MaskGenerator(
        input_size=input_size,
        patch_size=patch,
        block_size=block,
        mask_ratio=0.4,
        mode='nearest')
    ours = UncertaintyMasking(form='code', block_size=block // patch)
    grid = (input_size // patch, ) * 2
    B, C = 4, 20
    torch.manual_seed(0)
    cam = torch.rand(B, C, input_size, input_size)**2
    label = (torch.rand(B, C) < 0.15).float()
    label[:, 0] = 1  # at least one class per image
    iteration = 0 if phase == 'random' else ours.random_iters
    for seed in range(5):
        torch.manual_seed(seed)
        theirs = generator(cam, label, 0.2, 0.7, phase)
        torch.manual_seed(seed)
        mine = ours(cam, grid, label, iteration=iteration)
        assert theirs.shape == (B, *grid)
        assert torch.equal(mine, theirs.reshape(B, -1)), seed
        side = block // patch  # block side in tokens
        per_image = ours.num_masked_blocks((grid[0] // side)**2) * side**2
        assert int(mine.sum()) == B * per_image
    if phase == 'uncertain':
        # The guided path really ran: the same seed masks differently at
        # random.
        torch.manual_seed(0)
        guided = ours(cam, grid, label, iteration=iteration)
        torch.manual_seed(0)
        random = ours(cam, grid, label, iteration=0)
        assert not torch.equal(guided, random)


def test_losses_centres_and_temperature_match_fsr_loss():
    B, N, K, warmup, iters = 3, 16, 32, 5, 12
    theirs = authors('losses.py').FSRLoss(
        out_dim=K,
        warmup_teacher_temp=0.04,
        teacher_temp=0.07,
        student_temp=0.1,
        warmup_epochs=warmup,
        epochs=iters,
        num_gcrops=2,
        num_lcrops=0)
    args = dict(out_dim=K, temp_warmup_iters=warmup, loss_weight=1.)
    cls_loss, patch_loss = FSRClassLoss(**args), FSRPatchLoss(**args)
    gen = torch.Generator().manual_seed(0)
    for it in range(iters):
        # Projected tokens of [view 1; view 2] (2B, 1 + N, K); the mask of
        # view 2 only (view 1 unmasked), one image of view 2 unmasked too.
        teacher = torch.randn(2 * B, 1 + N, K, generator=gen) * 3
        student = torch.randn(2 * B, 1 + N, K, generator=gen) * 3
        mask2 = torch.rand(B, 4, 4, generator=gen) < 0.4
        mask2[0] = False
        mask = torch.cat([torch.zeros_like(mask2), mask2])
        their_cls, their_patch = theirs(
            teacher_output=teacher,
            student_output=student,
            student_output2=None,
            student_mask=mask,
            epoch=it)
        mine_cls = cls_loss(student[B:, 0], teacher[:B, 0], iteration=it)
        mine_patch = patch_loss(
            student[B:, 1:], teacher[B:, 1:], mask2.flatten(1), iteration=it)
        torch.testing.assert_close(mine_cls, their_cls, rtol=1e-6, atol=0)
        torch.testing.assert_close(mine_patch, their_patch, rtol=1e-6, atol=0)
    torch.testing.assert_close(
        cls_loss.center.center, theirs.class_center, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(
        patch_loss.center.center,
        theirs.patch_center.reshape(1, K),
        rtol=1e-6,
        atol=1e-7)


def test_schedules_match_bit_for_bit():
    # FSRLoss's temperatures: linspace(0.04, 0.07, max_iters / 8), then
    # 0.07 (VOC: 20,000 iterations).
    max_iters = 20000
    loss = authors('losses.py').FSRLoss(
        out_dim=4, warmup_epochs=max_iters // 8, epochs=max_iters)
    temps = [teacher_temperature(i, max_iters // 8) for i in range(max_iters)]
    assert temps == loss.teacher_temp.tolist()
    # train_voc.py: cosine_scheduler(0.9995, 1.0, fsr_iters), then 1.0.
    fsr_iters = 15000
    cosine = authors('utils/pyutils.py').cosine_scheduler(
        0.9995, 1.0, fsr_iters).tolist() + [1.0] * (
            max_iters - fsr_iters)
    momenta = [
        ema_momentum(i, 0.9995, 1.0, fsr_iters, 'cosine')
        for i in range(max_iters)
    ]
    assert momenta == cosine


def test_projector_matches_dino_head():
    torch.manual_seed(0)
    theirs = authors('models/projector.py').DINOHead(
        in_dim=24, out_dim=40, hidden_dim=32, bottleneck_dim=16).eval()
    mine = DINOHead(
        in_dim=24, out_dim=40, hidden_dim=32, bottleneck_dim=16).eval()
    renames = {
        'last_layer.weight_g': 'last_layer.parametrizations.weight.original0',
        'last_layer.weight_v': 'last_layer.parametrizations.weight.original1'
    }
    state = {renames.get(k, k): v for k, v in theirs.state_dict().items()}
    mine.load_state_dict(state, strict=True)
    # Frozen magnitude in both.
    assert not theirs.last_layer.weight_g.requires_grad
    assert not mine.last_layer.parametrizations.weight.original0.requires_grad
    x = torch.randn(2, 5, 24)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), theirs(x), rtol=1e-5, atol=1e-6)


def their_vit_to_ours(state: dict) -> dict:
    """The authors' FSR ViT keys (timm's plus ``mask_token`` and
    ``cls_blocks``) to WSSSViT's: timm's through the project's converter,
    the aggregation blocks' separate q, k, v packed as
    ``nn.MultiheadAttention`` does."""
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'model_converters'))
    try:
        from timm2wsss_vit import convert_timm_vit
    finally:
        sys.path.pop(0)
    timm_part = {
        k: v
        for k, v in state.items()
        if not k.startswith(('cls_blocks.', 'mask_token'))
    }
    out = dict(convert_timm_vit(timm_part, verbose=False))
    out['mask_token'] = state['mask_token'][None]  # (1, D) -> (1, 1, D)
    depth = len(
        {k.split('.')[1]
         for k in state if k.startswith('cls_blocks.')})
    for i in range(depth):
        src, dst = f'cls_blocks.{i}.', f'cls_aggregation.blocks.{i}.'
        for part in ('weight', 'bias'):
            out[f'{dst}attn.in_proj_{part}'] = torch.cat(
                [state[f'{src}attn.{x}.{part}'] for x in 'qkv'])
            out[f'{dst}attn.out_proj.{part}'] = state[f'{src}attn.proj.{part}']
            for norm in ('norm1', 'norm2'):
                out[f'{dst}{norm}.{part}'] = state[f'{src}{norm}.{part}']
            out[f'{dst}ffn.layers.0.0.{part}'] = state[f'{src}mlp.fc1.{part}']
            out[f'{dst}ffn.layers.1.{part}'] = state[f'{src}mlp.fc2.{part}']
    return out


@pytest.mark.parametrize('size', [(64, 64), (96, 64)], ids=['square', 'wide'])
def test_masked_vit_with_aggregation_matches(size):
    from functools import partial
    D, depth, heads = 32, 4, 4
    torch.manual_seed(0)
    theirs = authors('models/vit.py').VisionTransformer(
        img_size=64,
        patch_size=16,
        embed_dim=D,
        depth=depth,
        num_heads=heads,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        cls_depth=2,
        aux_layer=-3).eval()
    # Non-trivial norms, biases, tokens (their init leaves them 1 / 0).
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    mine = WSSSViT(
        img_size=(64, 64),
        patch_size=16,
        embed_dims=D,
        num_layers=depth,
        num_heads=heads,
        aux_layer=-3,
        freeze_pos_embed=False,
        with_mask_token=True,
        cls_token_from_aggregation=True,
        aggregation_depth=2,
        aggregation_mask='none').eval()
    mine.load_state_dict(their_vit_to_ours(theirs.state_dict()), strict=True)
    H, W = size
    h, w = H // 16, W // 16
    x = torch.randn(2, 3, H, W)
    mask = torch.rand(2, h, w) < 0.4
    for m in (None, mask):
        with torch.no_grad():
            their_tokens, their_aux = theirs(x, mask=m)
            final, aux, cls = mine(x, mask=m)
        tol = dict(rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(cls, their_tokens[:, 0], **tol)
        torch.testing.assert_close(
            final.flatten(2).transpose(1, 2), their_tokens[:, 1:], **tol)
        torch.testing.assert_close(
            aux.flatten(2).transpose(1, 2), their_aux, **tol)
    # The comparison sees the aggregation: the paper's masked cross-
    # attention (masked keys excluded) is not the code's.
    mine.cls_aggregation.aggregation_mask = 'exclude'
    with torch.no_grad():
        cls = mine(x, mask=mask)[2]
    assert (cls - their_tokens[:, 0]).abs().max() > 0.1
