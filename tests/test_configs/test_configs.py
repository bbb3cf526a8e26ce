# Copyright (c) OpenMMLab. All rights reserved.
"""Every config builds; toy configs run a loss and a predict step; full-size
configs have the expected size and one loss step at batch 1, 224 px."""
import ast
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import LabelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

from mmseg_wsss.utils import drop_pretrained, num_extra_views

CONFIGS = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py')))
CONFIGS = [c for c in CONFIGS if '_base_' not in c]


def alias_target(config: str):
    """The config a short name stands for, or None.

    A short name (``dupl_toy.py``) is a file whose only statement is
    ``_base_ = './full_name.py'`` (or a one-element list of it)."""
    with open(config) as f:
        body = ast.parse(f.read()).body
    if len(body) != 1 or not isinstance(body[0], ast.Assign):
        return None
    node = body[0]
    if [getattr(t, 'id', None) for t in node.targets] != ['_base_']:
        return None
    value = node.value
    if isinstance(value, ast.List) and len(value.elts) == 1:
        value = value.elts[0]
    if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
        return None
    return osp.normpath(osp.join(osp.dirname(config), value.value))


# Short name -> full name; the short names of a full name. Each config file
# is parsed once.
ALIASES = {}
SHORT_NAMES = {}
for _config in CONFIGS:
    _full = alias_target(_config)
    if _full:
        ALIASES[_config] = _full
        SHORT_NAMES.setdefault(_full, []).append(osp.basename(_config))

# Backbone parameter counts (millions) of the full-size models: ViT-B/16
# (timm's 85.80M without its head), ResNet-50/101 V1c without fc.
BACKBONE_PARAMS = {
    ('VisionTransformer', 768):
    85.80,
    ('WSSSViT', 768):
    85.80,
    ('ResNetV1c', 50):
    23.53,
    ('ResNetV1c', 101):
    42.52,
    # 1Stage: WideResNet-38 (official_code_notes 4), torchvision ResNets
    # without fc, the code's dilated VGG-16 ("20M").
    ('WideResNet38', None):
    105.07,
    ('ResNet', 50):
    23.51,
    ('ResNet', 101):
    42.50,
    ('DilatedVGG16', None):
    20.48,
    # SegFormer's MiT-B2 encoder (paper Table 1: 24.2M).
    ('MixVisionTransformer', 64):
    24.20,
}
# Whole-model sizes stated by the notes.
MODEL_PARAMS = {
    'single_stage_wr38_voc.py': 137.97,
    # RRM: WideResNet-38, classifier 4096 x 20, head 4096-512-21 (3x3, 3x3);
    # ASDT: a second head.
    'rrm_wr38_voc.py': 124.13,
    'asdt_wr38_voc.py': 143.10,
    # AGEN: VGG-16 conv1-5 (14.71M) + WideResNet-38 from b3 (104.25M) +
    # heads A 14.18M, B 21.25M, C 3.55M, D 10.63M (shared tails).
    'agen_voc.py': 168.56,
}
# Heads of mmseg's second-stage models, counted from mmseg 1.2.2 (21
# classes): DeepLabV3+ (separable ASPP + decoder) with its FCN auxiliary
# head; SegFormer's all-MLP head at mmseg's 256 channels.
MMSEG_HEAD_PARAMS = {
    'DepthwiseSeparableASPPHead': 17.6989 + 2.3652,
    'SegformerHead': 0.5322,
}


def single_stage_head_params(h) -> float:
    """SingleStageHead (millions): ASPP (bias-free convs + BN), skip, fuse,
    GCI (its shallow BN has no affine parameters), 2 decoder 3x3 and the
    classifier (with bias)."""
    (cs, cd), c = h.in_channels, h.get('channels', 256)
    s, n = h.get('skip_channels', 48), h.num_classes - 1
    dils = h.get('aspp_dilations', (1, 12, 24, 36))
    aspp = sum(cd * c * (1 if d == 1 else 9) + 2 * c for d in dils)
    aspp += (cd * c + 2 * c) + ((len(dils) + 1) * c * c + 2 * c)
    gci = (c * 2 * c + 4 * c) + cs * c + (c * c + 2 * c)
    total = (
        aspp + (cs * s + 2 * s) + ((c + s) * c * 9 + 2 * c) + gci + 2 *
        (c * c * 9 + 2 * c) + (c * n + n))
    return total / 1e6


def dino_head_params(h) -> float:
    """DINOHead (millions): 3 linear layers with bias, then the weight-normed
    bias-free last layer (v and g)."""
    hid, bott = h.get('hidden_dim', 2048), h.get('bottleneck_dim', 256)
    mlp = h.in_dim * hid + hid + hid * hid + hid + hid * bott + bott
    return (mlp + bott * h.out_dim + h.out_dim) / 1e6


def aggregation_params(bb) -> float:
    """FSR's class-token aggregation (millions): per block two LayerNorms,
    q/k/v and output projections with bias, a 4x MLP."""
    d = bb.get('embed_dims', 768)
    return bb.get('aggregation_depth', 2) * (12 * d * d + 13 * d) / 1e6


def build(config):
    cfg = Config.fromfile(config)
    drop_pretrained(cfg.model)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def fake_batch(num_classes, batch, size, views=0):
    inputs = [
        torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
        for _ in range(batch)
    ]
    samples = []
    for i in range(batch):
        s = SegDataSample()
        label = torch.zeros(num_classes - 1)
        label[i % (num_classes - 1)] = 1
        s.gt_cls_label = LabelData(data=label)
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        if views:
            s.views = torch.randint(
                0, 255, (views, 3, size, size), dtype=torch.uint8)
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def agen_branch_params(cin, ch, cout) -> float:
    """AGENBranch (millions): a 3x3 conv per input, 3x3, 1x1, biases."""
    cin = (cin, ) if isinstance(cin, int) else cin
    return (sum(c * ch * 9 + ch
                for c in cin) + ch * ch * 9 + ch + ch * cout + cout) / 1e6


def check_agen_params(cfg, model, n):
    """AGEN: the backbone is both branches less what AGEN replaces (VGG's
    fc6 / fc7, B's first ``shared_stages`` stages); heads by hand."""
    m = cfg.model
    assert model.num_classes == m.num_classes
    K = m.num_classes
    a_ch, b_ch = model.backbone.cls_channels, model.backbone.seg_channels
    cls_net = MODELS.build(m.backbone.cls_branch)
    seg_net = MODELS.build(m.backbone.seg_branch)
    dropped_a = ('fc6.', 'fc7.')
    if m.backbone.seg_branch.type == 'WideResNet38':
        dropped_b = ('conv1a.', 'b2.', 'b2_1.', 'b2_2.')
    else:
        dropped_b = ('stem.', 'layer1.')
    expected = (sum(p.numel() for k, p in cls_net.named_parameters()
                    if not k.startswith(dropped_a)) +
                sum(p.numel() for k, p in seg_net.named_parameters()
                    if not k.startswith(dropped_b))) / 1e6
    stages = m.get('agm_stages', (3, 4, 5))
    expected += agen_branch_params(a_ch[-1], m.cls_head.channels, K - 1)
    expected += agen_branch_params(b_ch[-1], m.seg_head.channels, K)
    if stages:
        expected += agen_branch_params([a_ch[s - 3] for s in stages],
                                       m.agm_cls_head.channels, K - 1)
        expected += agen_branch_params([b_ch[s - 3] for s in stages],
                                       m.agm_seg_head.channels, K)
    expected += len(m.get('coam_stages', (3, 4, 5))) / 1e6  # lambdas
    assert abs(n - expected) < 0.005, (n, expected)
    if 'toy' in osp.basename(cfg.filename):
        assert n < 5


def test_every_config_is_collected():
    assert len(CONFIGS) >= 12
    # The stated sizes name configs that exist (short or full names).
    assert set(MODEL_PARAMS) <= {osp.basename(c) for c in CONFIGS}


def test_short_names_are_their_full_configs():
    """Every short name resolves to an existing full-name config and to the
    same settings (so building the full name covers both)."""
    assert len(ALIASES) >= 30
    for short, full in ALIASES.items():
        assert full in CONFIGS, (short, full)
        assert alias_target(full) is None, (short, full)
        got = Config.fromfile(short).to_dict()
        assert got == Config.fromfile(full).to_dict(), short


@pytest.mark.parametrize(
    'config', [c for c in CONFIGS if c not in ALIASES], ids=osp.basename)
def test_config_builds(config):
    cfg, model = build(config)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    trainable = sum(p.numel()
                    for p in model.parameters() if p.requires_grad) / 1e6
    print(f'{osp.basename(config)}: {n:.2f}M parameters, '
          f'{trainable:.2f}M trainable')
    if cfg.model.type in ('DuPLSegmentor', 'FSRSegmentor'):
        n /= 2  # two ToCo networks; FSR: the student and its EMA copy
    extra = 0.
    if cfg.model.get('loss_ctc'):  # ToCo's CTC head and its EMA copy
        extra += 2 * dino_head_params(cfg.model.network.proj_head)
    elif cfg.model.type == 'FSRSegmentor':
        bb = cfg.model.network.backbone
        d, p = bb.get('embed_dims', 768), bb.get('patch_size', 16)
        grid = (bb.img_size[0] // p) * (bb.img_size[1] // p)
        # Projector, aggregation, mask token, position embeddings at the
        # training grid (FSR: 28x28) instead of the pretrained 14x14.
        extra += dino_head_params(cfg.model.network.proj_head)
        extra += aggregation_params(bb) + d / 1e6
        extra += (grid - 14 * 14) * d / 1e6
    n -= extra
    if cfg.model.type == 'AGENSegmentor':
        check_agen_params(cfg, model, n)
        return
    if 'network' in cfg.model:  # ToCo family: the network holds the parts
        cfg.model = cfg.model.network
    assert model.num_classes == cfg.model.get(
        'decode_head', cfg.model.get('cls_head')).num_classes
    if 'toy' in osp.basename(config):
        assert n < 5
        return
    bb = cfg.model.backbone
    key = (bb.type, bb.get('depth', bb.get('embed_dims', 768)))
    expected = BACKBONE_PARAMS.get(key, BACKBONE_PARAMS.get((bb.type, None)))
    for name in ('cls_head', 'aux_cls_head'):
        if name in cfg.model:
            head = cfg.model[name]
            expected += (head.num_classes - 1) * head.in_channels / 1e6
    head_type = cfg.model.get('decode_head', {}).get('type')
    if head_type == 'SingleStageHead':
        expected += single_stage_head_params(cfg.model.decode_head)
    elif head_type == 'ASPPV2Head':  # one 3x3 in->K with bias per rate
        h = cfg.model.decode_head
        expected += len(h.dilations) * (h.in_channels * h.num_classes * 9 +
                                        h.num_classes) / 1e6
    elif head_type in MMSEG_HEAD_PARAMS:
        assert cfg.model.decode_head.num_classes == 21
        expected += MMSEG_HEAD_PARAMS[head_type]
    elif head_type == 'RRMSegHead':  # two 3x3 with bias; ASDT: two heads
        h = cfg.model.decode_head
        c = h.get('channels', 512)
        heads = 2 if cfg.model.type == 'ASDTSegmentor' else 1
        expected += heads * (h.in_channels * c * 9 + c +
                             c * h.num_classes * 9 + h.num_classes) / 1e6
    elif 'decode_head' in cfg.model:  # LargeFOV: 3x3, 3x3, 1x1, no bias
        h = cfg.model.decode_head
        expected += (h.in_channels * h.channels * 9 + h.channels**2 * 9 +
                     h.channels * h.num_classes) / 1e6
    assert abs(n - expected) < 0.01, (key, n, expected)
    for name in [osp.basename(config)] + SHORT_NAMES.get(config, []):
        if name in MODEL_PARAMS:
            assert abs(n - MODEL_PARAMS[name]) < 0.01, (name, n)


TOY = [c for c in CONFIGS if 'toy-' in osp.basename(c)]
# Fully supervised second stages: checked on a real toy batch below.
SECOND_STAGE_TOY = [
    c for c in TOY if osp.basename(osp.dirname(c)) == 'second_stage'
]
TOY = [c for c in TOY if c not in SECOND_STAGE_TOY]


@pytest.mark.parametrize('config', TOY, ids=osp.basename)
def test_toy_config_loss_and_predict(config):
    cfg, model = build(config)
    data = fake_batch(
        model.num_classes, batch=2, size=64, views=num_extra_views(cfg))
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode='loss')
    assert any(k.startswith('loss_cls') for k in losses)
    loss = sum(losses.values())
    loss.backward()
    assert torch.isfinite(loss)
    backbone = model.networks[0].backbone if hasattr(
        model, 'networks') else model.backbone
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        out = model.test_step(fake_batch(model.num_classes, 1, 64))
    assert out[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert out[0].seg_logits.data.shape[0] == model.num_classes


@pytest.mark.parametrize('config', SECOND_STAGE_TOY, ids=osp.basename)
def test_second_stage_toy_config_trains_on_real_batches(
        config, toy_root, tmp_path):
    """A fully supervised loss step on a batch of the config's own training
    pipeline (fake pseudo labels in a folder for the pseudo-label config,
    the true masks for the oracle), and a prediction of a val image."""
    from mmengine.runner import Runner

    from conftest import write_fake_pseudo_labels
    from mmseg_wsss.utils import set_data_root
    torch.manual_seed(0)
    cfg, model = build(config)
    set_data_root(cfg, toy_root)
    train = cfg.train_dataloader.dataset
    if train.type == 'PseudoLabelDataset':
        folder = str(tmp_path / 'pseudo')
        write_fake_pseudo_labels(toy_root, folder)
        train.pseudo_label_dir = folder
    else:  # the oracle
        folder = osp.join(toy_root, 'SegmentationClass')
    loaders = {}
    for key in ('train_dataloader', 'val_dataloader'):
        loader_cfg = cfg[key].copy()
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loaders[key] = Runner.build_dataloader(loader_cfg, seed=0)
    assert loaders['train_dataloader'].batch_size == 16
    batch = next(iter(loaders['train_dataloader']))
    assert all(
        osp.dirname(s.seg_map_path) == folder for s in batch['data_samples'])
    model.train()
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    losses['decode.loss_ce'].backward()
    assert torch.isfinite(losses['decode.loss_ce'])
    # Every parameter is used (DDP); mmseg's ResNets zero the last norm of
    # each residual branch at init, so only some backbone grads are > 0.
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    assert all(p.grad.abs().sum() > 0 for p in model.decode_head.parameters())
    model.eval()
    with torch.no_grad():
        out = model.test_step(next(iter(loaders['val_dataloader'])))
    assert out[0].pred_sem_seg.data.shape == (1, 48, 48)
    assert out[0].seg_logits.data.shape == (model.num_classes, 48, 48)


def test_deeplabv2_r101_frozen_norms_and_lr_groups():
    """DeepLab-v2's fine-tuning: batch norms frozen (eval mode, no
    gradient), LR x1 for the backbone convs, x10 / x20 for the head's
    weights / biases, no weight decay on biases (ASDT: base LR 2.5e-3)."""
    from mmengine.optim import build_optim_wrapper
    cfg, model = build(
        osp.join(REPO_ROOT, 'configs', 'second_stage',
                 'deeplabv2_r101_voc.py'))
    model.train()
    norms = [
        m for m in model.backbone.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    assert norms and not any(m.training for m in norms)
    assert not any(p.requires_grad for m in norms for p in m.parameters())
    groups = build_optim_wrapper(model, cfg.optim_wrapper).param_groups
    params = {id(p) for p in model.parameters()}
    # (mmengine's OptimWrapper adds a parameter-less group for the log.)
    got = sorted((g['lr'], g['weight_decay'], len(g['params'])) for g in groups
                 if id(g['params'][0]) in params)
    # 104 backbone convs (ResNet-101, no biases); four ASPP branches.
    assert got == sorted([(2.5e-3, 5e-4, 104), (2.5e-2, 5e-4, 4),
                          (5e-2, 0.0, 4)]), got


FULL_SIZE_STEP = [
    'cam_baseline/cam_vit-b16_2xb2-20k_voc12aug-448x448.py',
    'cam_baseline/cam_r50-d8_2xb2-20k_voc12aug-448x448.py',
    'toco/toco_vitb_voc.py',
    'toco/toco-noctc_vitb_voc.py',
    'dupl/dupl_vitb_voc.py',
    'fsr/fsr_vitb_voc.py',
    'single_stage/single_stage_wr38_voc.py',
    'rrm/rrm_wr38_voc.py',
    'asdt/asdt_wr38_voc.py',
    'agen/agen_voc.py',
]


@pytest.mark.parametrize('config', FULL_SIZE_STEP)
def test_full_size_loss_step(config):
    """One full-size loss step per method at batch 1 and 224 px, with the
    iteration past every gate."""
    from mmengine.logging import MessageHub
    cfg, model = build(osp.join(REPO_ROOT, 'configs', config))
    model.data_preprocessor.size = (224, 224)
    model.train()
    batch = model.data_preprocessor(
        fake_batch(model.num_classes, 1, 224, views=num_extra_views(cfg)),
        True)
    hub = MessageHub.get_instance('full_size_step')
    hub.update_info('iter', 10**6)
    try:
        losses = model(**batch, mode='loss')
    finally:
        hub.update_info('iter', 0)
    loss = sum(losses.values())
    loss.backward()
    assert torch.isfinite(loss)
    if 'toco' in config:
        assert {'loss_seg', 'loss_ptc', 'loss_energy'} <= set(losses)
        assert losses['loss_seg'] > 0
    if 'dupl' in config:
        # Two ToCo students (2 x 91.74M), every gate passed: cross
        # segmentation, noise filtering, strong-view consistency; no energy.
        n = sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(n - 183.48) < 0.01, n
        assert {
            'loss_seg_1', 'loss_seg_2', 'loss_ptc_1', 'loss_dis',
            'loss_consist_1', 'loss_consist_2'
        } <= set(losses)
        assert not any('energy' in k for k in losses)
        assert losses['loss_seg_1'] > 0 and losses['loss_seg_2'] > 0
    if 'single_stage' in config:
        # Segmentation switched on (PAMR pseudo labels, balanced CE); the
        # loss may be 0 when an untrained model's pseudo label misses the
        # image's class (the image is dropped, as in the code).
        assert {'loss_cls', 'loss_seg'} <= set(losses)
        assert losses['loss_seg'].requires_grad
    if config.startswith(('rrm', 'asdt')):
        # The reliable label (two CRFs of the multi-scale CAMs) and, for
        # ASDT past start_iter in the low level (10**6 % 150 = 100 >= 30),
        # the student's B^st.
        assert {'loss_cls', 'loss_seg', 'loss_energy'} <= set(losses)
        assert losses['time_crf'] > 0
        if config.startswith('asdt'):
            assert model.student_teacher(10**6) == 'seg'
            assert {'loss_seg_student', 'loss_energy_student'} <= set(losses)
    if config.startswith('agen'):
        # Eq. 15: four classification and four seeding losses, the boundary
        # loss through SEC's CRF on the 28 x 28 output grid.
        assert {
            'loss_cls', 'loss_cls_agm3', 'loss_cls_agm4', 'loss_cls_agm5',
            'loss_seed', 'loss_seed_agm3', 'loss_seed_agm4', 'loss_seed_agm5',
            'loss_boundary'
        } <= set(losses)
        assert losses['time_crf'] > 0
