# Copyright (c) OpenMMLab. All rights reserved.
"""WSSSViT against a real timm ViT, the timm converter and LargeFOVHead."""
import importlib.util
import os.path as osp
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.drop import DropPath
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_wsss.models.backbones.wsss_vit import WSSSViT
from mmseg_wsss.models.heads.large_fov_head import LargeFOVHead
from mmseg_wsss.registry import MODELS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(REPO_ROOT, 'tools', 'model_converters',
                     'timm2wsss_vit.py')
# A tiny timm ViT: 192-d, 4 blocks, 3 heads, 16 px patches, 224 px.
TINY = dict(embed_dim=192, depth=4, num_heads=3)
AUX_LAYER = -3  # block index 1 of 4
ATOL = 1e-5

pytestmark = pytest.mark.usefixtures('one_thread')


def _timm_vit_cls():
    """timm's VisionTransformer; only the comparisons need timm."""
    return pytest.importorskip('timm.models.vision_transformer').\
        VisionTransformer


def _load_converter():
    spec = importlib.util.spec_from_file_location('_wsss_timm2wsss_vit',
                                                  CONVERTER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def converter():
    return _load_converter()


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Perturb every parameter so that a wrong key mapping cannot hide
    behind timm's init (unit LayerNorm weights, zero biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


@pytest.fixture(scope='module')
def timm_vit():
    torch.manual_seed(0)
    model = _timm_vit_cls()(img_size=224, patch_size=16, **TINY)
    return _randomise(model).eval()


def _tiny_wsss(**kwargs) -> WSSSViT:
    return WSSSViT(
        embed_dims=TINY['embed_dim'],
        num_layers=TINY['depth'],
        num_heads=TINY['num_heads'],
        aux_layer=AUX_LAYER,
        **kwargs)


@pytest.fixture(scope='module')
def converted(timm_vit, converter):
    return converter.convert_timm_vit(timm_vit.state_dict(), verbose=False)


@pytest.fixture(scope='module')
def wsss_vit(converted):
    model = _tiny_wsss().eval()
    model.load_state_dict(converted, strict=True)
    return model


def _tokens(fmap: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) map back to (B, h*w, D) tokens."""
    return fmap.flatten(2).transpose(1, 2)


def _timm_outputs(model, x):
    """timm's normed tokens and the un-normed output of the aux block."""
    store = {}
    idx = AUX_LAYER % len(model.blocks)
    handle = model.blocks[idx].register_forward_hook(
        lambda mod, inp, out: store.__setitem__('aux', out))
    with torch.no_grad():
        tokens = model.forward_features(x)
    handle.remove()
    return tokens, store['aux']


def _max_diffs(ours, tokens, aux):
    final_map, aux_map, cls_token = ours
    return dict(
        final=(_tokens(final_map) - tokens[:, 1:]).abs().max().item(),
        aux=(_tokens(aux_map) - aux[:, 1:]).abs().max().item(),
        cls=(cls_token - tokens[:, 0]).abs().max().item())


# --------------------------------------------------------------- converter


def test_converted_keys_load_strictly(timm_vit, converted, capsys, converter):
    timm_keys = set(timm_vit.state_dict())
    assert {'head.weight', 'head.bias'} <= timm_keys
    # Every timm key but the head lands, and nothing else is produced.
    assert len(converted) == len(timm_keys) - 2
    model = _tiny_wsss()
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # The head is dropped with a printed note.
    converter.convert_timm_vit(timm_vit.state_dict())
    assert 'head.weight' in capsys.readouterr().out


def test_converter_unwraps_and_drops_distillation(timm_vit, converter):
    sd = dict(timm_vit.state_dict())
    pos = sd['pos_embed']
    dist_pos = torch.randn(1, 1, pos.shape[2])
    # A distilled DeiT: pos rows [cls, dist, patches], extra token and head.
    distilled = dict(sd)
    distilled['pos_embed'] = torch.cat((pos[:, :1], dist_pos, pos[:, 1:]), 1)
    distilled['dist_token'] = torch.randn(1, 1, pos.shape[2])
    distilled['head_dist.weight'] = torch.randn(10, pos.shape[2])
    distilled['head_dist.bias'] = torch.randn(10)
    for wrapper in ('model', 'state_dict'):
        out = converter.convert_timm_vit({wrapper: distilled}, verbose=False)
        assert 'dist_token' not in out
        assert not any(k.startswith('head') for k in out)
        assert torch.equal(out['pos_embed'], pos)
        _tiny_wsss().load_state_dict(out, strict=True)


def test_converter_rejects_unknown_weights(timm_vit, converter):
    sd = dict(timm_vit.state_dict())
    sd['fc_norm.weight'] = torch.ones(TINY['embed_dim'])
    with pytest.raises(KeyError, match='fc_norm'):
        converter.convert_timm_vit(sd, verbose=False)


def test_converter_cli_and_pretrained_init(timm_vit, converter, tmp_path,
                                           monkeypatch):
    src, dst = tmp_path / 'deit.pth', tmp_path / 'out' / 'wsss.pth'
    torch.save({'model': timm_vit.state_dict()}, src)
    monkeypatch.setattr(sys, 'argv', ['timm2wsss_vit.py', str(src), str(dst)])
    converter.main()
    # mmseg's Pretrained init path loads the converted file.
    model = _tiny_wsss(init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    tokens, aux = _timm_outputs(timm_vit, x)
    with torch.no_grad():
        diffs = _max_diffs(model(x), tokens, aux)
    assert max(diffs.values()) < ATOL, diffs


# ------------------------------------------------------- outputs vs timm


def test_matches_timm_at_224(timm_vit, wsss_vit):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    tokens, aux = _timm_outputs(timm_vit, x)
    with torch.no_grad():
        ours = wsss_vit(x)
    final_map, aux_map, cls_token = ours
    assert final_map.shape == (2, 192, 14, 14)
    assert aux_map.shape == (2, 192, 14, 14)
    assert cls_token.shape == (2, 192)
    diffs = _max_diffs(ours, tokens, aux)
    assert max(diffs.values()) < ATOL, diffs
    # The aux map is not normed: it differs from the normed block output.
    normed_aux = timm_vit.norm(aux)[:, 1:]
    assert (_tokens(aux_map) - normed_aux).abs().max() > 1e-2


def test_matches_timm_at_other_size(timm_vit, wsss_vit):
    """160x192 input: pos embed resized from 14x14 to 10x12.

    timm's ``dynamic_img_size`` resamples with ``antialias=True``, ToCo (and
    mmseg) with plain bicubic, ``align_corners=False``. So the reference is a
    timm model built for 160x192 whose position embeddings are resized here
    with ToCo's interpolation, independently of WSSSViT's code.
    """
    h, w = 10, 12
    sd = timm_vit.state_dict()
    pos = sd['pos_embed']
    grid = pos[:, 1:].reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid, size=(h, w), mode='bicubic', align_corners=False)
    new_pos = torch.cat((pos[:, :1], grid.flatten(2).transpose(1, 2)), 1)
    ref = _timm_vit_cls()(img_size=(160, 192), patch_size=16, **TINY).eval()
    ref.load_state_dict({**sd, 'pos_embed': new_pos})

    torch.manual_seed(2)
    x = torch.randn(2, 3, 160, 192)
    tokens, aux = _timm_outputs(ref, x)
    with torch.no_grad():
        ours = wsss_vit(x)
    assert ours[0].shape == (2, 192, h, w)
    diffs = _max_diffs(ours, tokens, aux)
    assert max(diffs.values()) < ATOL, diffs


def test_resizes_same_count_other_grid(wsss_vit):
    # 112x448 -> 7x28 = 196 tokens, as many as the stored 14x14 grid: still
    # resized (mmseg's own check compares token counts only).
    x = torch.randn(1, 3, 112, 448)
    with torch.no_grad():
        final_map, aux_map, _ = wsss_vit(x)
    assert final_map.shape == (1, 192, 7, 28)
    resized = wsss_vit.resize_pos_embed(wsss_vit.pos_embed, (7, 28), (14, 14),
                                        'bicubic')
    assert not torch.allclose(resized, wsss_vit.pos_embed)


# ----------------------------------------------------------- options


def test_tiny_variant_shapes_and_registry():
    model = MODELS.build(
        dict(
            type='WSSSViT',
            img_size=96,
            patch_size=8,
            embed_dims=64,
            num_layers=4,
            num_heads=4))
    assert isinstance(model, WSSSViT)
    assert model.aux_index == 1
    final_map, aux_map, cls_token = model(torch.randn(2, 3, 48, 40))
    assert final_map.shape == aux_map.shape == (2, 64, 6, 5)
    assert cls_token.shape == (2, 64)
    # Sizes that do not fill whole patches: dropped (timm) or padded.
    assert model(torch.randn(1, 3, 50, 45))[0].shape[-2:] == (6, 5)
    padded = WSSSViT(
        img_size=96,
        patch_size=8,
        embed_dims=64,
        num_layers=4,
        num_heads=4,
        patch_pad='corner')
    assert padded(torch.randn(1, 3, 50, 45))[0].shape[-2:] == (7, 6)


def test_fused_attention_same_function_same_keys():
    """SDPA attention: same state-dict keys, same outputs and gradients as
    mmcv's explicit path, in train mode with dropout off."""
    from mmseg_wsss.models.utils.fused_multihead_attention import \
        FusedMultiheadAttention
    cfg = dict(
        img_size=48,
        patch_size=8,
        embed_dims=64,
        num_layers=3,
        num_heads=4,
        drop_path_rate=0.)
    torch.manual_seed(0)
    fused = WSSSViT(**cfg).train()
    plain = WSSSViT(fused_attention=False, **cfg).train()
    assert all(
        isinstance(layer.attn.attn, FusedMultiheadAttention)
        for layer in fused.layers)
    assert not any(
        isinstance(layer.attn.attn, FusedMultiheadAttention)
        for layer in plain.layers)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 3, 48, 56)
    outs_f, outs_p = fused(x), plain(x)
    for a, b in zip(outs_f, outs_p):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    sum(o.square().sum() for o in outs_f).backward()
    sum(o.square().sum() for o in outs_p).backward()
    for (name, p_f), p_p in zip(fused.named_parameters(), plain.parameters()):
        if p_f.grad is not None:
            torch.testing.assert_close(
                p_f.grad, p_p.grad, atol=1e-4, rtol=1e-4, msg=name)
    # Callers that ask for the weights still get them.
    attn = fused.layers[0].attn.attn
    q = torch.randn(5, 2, 64)
    assert attn(q, q, q)[1] is None
    assert attn(q, q, q, need_weights=True)[1].shape == (2, 5, 5)


def test_aux_layer_last_is_normed():
    model = WSSSViT(
        img_size=32,
        patch_size=8,
        embed_dims=64,
        num_layers=2,
        num_heads=2,
        aux_layer=-1).eval()
    with torch.no_grad():
        final_map, aux_map, _ = model(torch.randn(1, 3, 32, 32))
    assert torch.equal(final_map, aux_map)
    with pytest.raises(ValueError, match='aux_layer'):
        WSSSViT(embed_dims=64, num_layers=2, num_heads=2, aux_layer=2)


def test_pos_embed_frozen_by_default():
    kwargs = dict(
        img_size=32, patch_size=8, embed_dims=64, num_layers=3, num_heads=2)
    frozen = WSSSViT(**kwargs)
    assert not frozen.pos_embed.requires_grad
    frozen(torch.randn(1, 3, 32, 40))[0].sum().backward()
    assert frozen.pos_embed.grad is None
    assert frozen.cls_token.grad is not None

    trainable = WSSSViT(freeze_pos_embed=False, **kwargs)
    assert trainable.pos_embed.requires_grad
    trainable(torch.randn(1, 3, 32, 40))[0].sum().backward()
    assert trainable.pos_embed.grad is not None
    assert trainable.pos_embed.grad.abs().sum() > 0

    # The flag survives mmseg's (in-place) weight initialisation.
    frozen.init_weights()
    assert not frozen.pos_embed.requires_grad


def _manual_forward(model: WSSSViT, x, mask):
    """Reference: mask token swapped in before position embeddings."""
    patches, hw = model.patch_embed(x)
    patches = torch.where(mask[..., None], model.mask_token, patches)
    tokens = torch.cat((model.cls_token.expand(x.shape[0], -1, -1), patches),
                       1)
    pos = model.resize_pos_embed(model.pos_embed, hw, model.pos_grid,
                                 'bicubic')
    tokens = tokens + pos
    for layer in model.layers:
        tokens = layer(tokens)
    return model.norm1(tokens)


def test_mask_token_replaces_patches_before_pos_embed():
    torch.manual_seed(3)
    model = WSSSViT(
        img_size=32,
        patch_size=8,
        embed_dims=64,
        num_layers=3,
        num_heads=2,
        aux_layer=0,
        with_mask_token=True)
    model.init_weights()  # random, non-zero position embeddings
    model.eval()
    assert model.mask_token.shape == (1, 1, 64)
    x = torch.randn(2, 3, 32, 40)
    mask = torch.rand(2, 4 * 5) < 0.4
    with torch.no_grad():
        final_map, _, cls_token = model(x, mask=mask)
        ref = _manual_forward(model, x, mask)
        unmasked = model(x)[0]
    assert (_tokens(final_map) - ref[:, 1:]).abs().max() < ATOL
    assert (cls_token - ref[:, 0]).abs().max() < ATOL
    assert not torch.allclose(final_map, unmasked)
    # A (B, h, w) mask is accepted too.
    with torch.no_grad():
        assert torch.allclose(
            model(x, mask=mask.reshape(2, 4, 5))[0], final_map)

    # Everything masked: the image no longer matters, but position still
    # does (the mask token is added to the position embeddings).
    full = torch.ones(2, 20, dtype=torch.bool)
    with torch.no_grad():
        out = model(x, mask=full)[0]
    assert torch.allclose(out[0], out[1], atol=ATOL)
    assert not torch.allclose(out[0, :, 0, 0], out[0, :, 1, 1], atol=1e-3)

    # The mask token is learnt.
    model.train()
    model(x, mask=mask)[0].sum().backward()
    assert model.mask_token.grad is not None


def test_mask_errors():
    model = WSSSViT(
        img_size=32, patch_size=8, embed_dims=64, num_layers=3, num_heads=2)
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match='with_mask_token'):
        model(x, mask=torch.zeros(1, 16, dtype=torch.bool))
    masked = WSSSViT(
        img_size=32,
        patch_size=8,
        embed_dims=64,
        num_layers=3,
        num_heads=2,
        with_mask_token=True)
    with pytest.raises(ValueError, match='shape'):
        masked(x, mask=torch.zeros(1, 15, dtype=torch.bool))


def test_drop_path_on_both_branches():
    kwargs = dict(
        img_size=32, patch_size=8, embed_dims=64, num_layers=4, num_heads=2)
    plain = WSSSViT(**kwargs)
    assert not any(isinstance(m, DropPath) for m in plain.modules())
    model = WSSSViT(drop_path_rate=0.3, **kwargs)
    rates = [layer.attn.dropout_layer.drop_prob for layer in model.layers]
    assert rates == pytest.approx([0., 0.1, 0.2, 0.3])
    # The MLP branch keeps mmseg's DropPath with the same rates.
    ffn_rates = [
        layer.ffn.dropout_layer.drop_prob for layer in model.layers
        if isinstance(layer.ffn.dropout_layer, DropPath)
    ]
    assert ffn_rates == pytest.approx([0.1, 0.2, 0.3])
    # Deterministic in eval mode and equal to the model without drop path.
    plain.load_state_dict(model.state_dict())
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    plain.eval()
    with torch.no_grad():
        assert torch.allclose(model(x)[0], plain(x)[0])
        model.train()
        torch.manual_seed(0)
        assert not torch.allclose(model(x)[0], plain(x)[0])


def _agg_vit(**kwargs):
    torch.manual_seed(0)
    return WSSSViT(
        img_size=32,
        patch_size=8,
        embed_dims=32,
        num_layers=2,
        num_heads=2,
        aux_layer=0,
        with_mask_token=True,
        cls_token_from_aggregation=True,
        **kwargs).eval()


def test_aggregation_class_token_outside_self_attention():
    """FSR: patch tokens never see the class token; the class token comes
    from cross-attention over the last block's patch tokens."""
    model = _agg_vit()
    x = torch.randn(2, 3, 32, 32)
    final, aux, cls = model(x)
    assert final.shape == aux.shape == (2, 32, 4, 4) and cls.shape == (2, 32)
    with torch.no_grad():
        model.cls_token.add_(1.)
    final2, aux2, cls2 = model(x)
    assert torch.equal(final, final2) and torch.equal(aux, aux2)
    assert not torch.allclose(cls, cls2)
    # Gradients reach the aggregation and the mask token.
    model.train()
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, :5] = True
    out = model(x, mask=mask)
    (out[0].sum() + out[2].sum()).backward()
    assert model.mask_token.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.cls_aggregation.parameters())


@pytest.mark.parametrize('aggregation_mask', ['none', 'exclude'])
def test_aggregation_mask_keys(aggregation_mask):
    """With 'exclude' the class token ignores the masked positions of the
    last block's output; with 'none' (the released code) it reads them."""
    model = _agg_vit(aggregation_mask=aggregation_mask)
    x = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, [0, 5, 10]] = True
    cls = model(x, mask=mask)[2]

    # A shift that varies over the channels: a constant one would vanish in
    # the aggregation's LayerNorm and leave the class token unchanged but
    # for rounding, with either setting.
    shift = 3. * torch.linspace(-1., 1., cls.shape[-1])

    def perturb(module, args, output):
        output = output.clone()
        output[:, [0, 5, 10]] += shift
        return output

    handle = model.layers[-1].register_forward_hook(perturb)
    try:
        cls2 = model(x, mask=mask)[2]
    finally:
        handle.remove()
    if aggregation_mask == 'exclude':
        torch.testing.assert_close(cls, cls2)
    else:
        assert (cls - cls2).abs().max() > 0.1


def test_aggregation_pos_embed_resized_at_load_and_trained(tmp_path):
    """FSR: the 14x14 pretrained position embeddings become 28x28 at load
    (here a 4x4 grid into 8x8) and are trained; the aggregation keeps its
    own init (not in the checkpoint)."""
    small = WSSSViT(
        img_size=32,
        patch_size=8,
        embed_dims=32,
        num_layers=2,
        num_heads=2,
        aux_layer=0)
    ckpt = str(tmp_path / 'vit.pth')
    torch.save(dict(state_dict=small.state_dict()), ckpt)
    model = WSSSViT(
        img_size=64,
        patch_size=8,
        embed_dims=32,
        num_layers=2,
        num_heads=2,
        aux_layer=0,
        freeze_pos_embed=False,
        with_mask_token=True,
        cls_token_from_aggregation=True,
        init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    agg = {k: v.clone() for k, v in model.cls_aggregation.state_dict().items()}
    model.init_weights()
    assert model.pos_embed.shape == (1, 1 + 64, 32)
    assert model.pos_embed.requires_grad
    expected = small.resize_pos_embed(small.pos_embed.detach(), (8, 8), (4, 4),
                                      'bicubic')
    torch.testing.assert_close(model.pos_embed.detach(), expected)
    torch.testing.assert_close(model.layers[0].ln1.weight,
                               small.layers[0].ln1.weight)
    for k, v in model.cls_aggregation.state_dict().items():
        assert torch.equal(v, agg[k]), k


def test_aggregation_vit_b16_parameter_count():
    """ViT-B/16 with FSR's 2-block aggregation and mask token at 224 px."""
    model = WSSSViT(with_mask_token=True, cls_token_from_aggregation=True)
    n = sum(p.numel() for p in model.parameters())
    agg = sum(p.numel() for p in model.cls_aggregation.parameters())
    print(f'ViT-B/16 + aggregation: {n / 1e6:.2f}M ({agg / 1e6:.2f}M '
          'aggregation)')
    assert agg == 2 * (12 * 768 * 768 + 13 * 768)  # 14.18M
    assert n == 85_798_656 + agg + 768


def test_vit_b16_parameter_count():
    model = WSSSViT()
    n = sum(p.numel() for p in model.parameters())
    assert n == 85_798_656  # timm ViT-B/16 without its head
    assert model.aux_index == 9
    assert model.norm1.eps == 1e-6


# ----------------------------------------------------------- LargeFOV


def test_large_fov_structure():
    head = MODELS.build(
        dict(type='LargeFOVHead', in_channels=768, num_classes=21))
    assert isinstance(head, LargeFOVHead)
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    assert all(c.bias is None for c in convs)
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3), (1, 1)]
    assert [c.dilation for c in convs] == [(5, 5), (5, 5), (1, 1)]
    assert [c.padding for c in convs] == [(5, 5), (5, 5), (0, 0)]
    assert convs[-1] is head.conv_seg
    assert head.dropout is None
    n = sum(p.numel() for p in head.parameters())
    assert n == 768 * 512 * 9 + 512 * 512 * 9 + 512 * 21
    x = (torch.randn(1, 768, 8, 10), torch.randn(1, 768, 8,
                                                 10), torch.randn(1, 768))
    with torch.no_grad():
        assert head(x).shape == (1, 21, 8, 10)


def test_large_fov_init():
    kwargs = dict(in_channels=64, channels=128, num_classes=21)
    default = LargeFOVHead(**kwargs)
    before = default.conv_seg.weight.clone()
    default.init_weights()
    # PyTorch default init is kept (no Normal(0.01) on conv_seg).
    assert torch.equal(before, default.conv_seg.weight)

    kaiming = LargeFOVHead(init='kaiming', **kwargs)
    kaiming.init_weights()
    conv = kaiming.convs[0]
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(
        (2 / fan_out)**0.5, rel=0.1)
    with pytest.raises(ValueError, match='init'):
        LargeFOVHead(init='xavier', **kwargs)


def test_large_fov_loss_with_wsss_vit():
    torch.manual_seed(4)
    backbone = WSSSViT(
        img_size=32, patch_size=8, embed_dims=64, num_layers=3, num_heads=2)
    head = LargeFOVHead(in_channels=64, channels=32, num_classes=5)
    img = torch.randn(2, 3, 32, 40)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        label = torch.randint(0, 5, (1, 32, 40))
        label[:, :4] = 255
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(32, 40), ori_shape=(32, 40)))
        samples.append(sample)
    losses = head.loss(backbone(img), samples, train_cfg=None)
    assert set(losses) == {'loss_ce', 'acc_seg'}
    assert torch.isfinite(losses['loss_ce'])
    losses['loss_ce'].backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
