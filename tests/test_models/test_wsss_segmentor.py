# Copyright (c) OpenMMLab. All rights reserved.
"""The WSSS segmentor base: settings merged one way (misspelt keys are
errors), gates, the public pseudo_labels(), checkpoints of e6331ef."""
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import load_checkpoint
from mmengine.structures import LabelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmseg_wsss.models.utils import merge_cfg
from mmseg_wsss.models.wsss import at_iteration, current_iter, is_active
from mmseg_wsss.utils import drop_pretrained

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
KEYS = osp.join(REPO_ROOT, 'tests', 'golden', 'e6331ef_state_dict_keys.json')
sys.path.insert(0, osp.join(REPO_ROOT, 'tests', 'golden'))
try:
    import golden_steps
finally:
    sys.path.pop(0)
# The toy configs of the golden steps (their e6331ef keys are recorded).
TOY = {
    name: case['config']
    for name, case in golden_steps.CASES.items()
    if not name.endswith('_e6331ef')
}
pytestmark = pytest.mark.usefixtures('one_thread')


def _cfg(name):
    cfg = Config.fromfile(osp.join(REPO_ROOT, TOY[name]))
    drop_pretrained(cfg.model)
    cfg.model.data_preprocessor.size = (48, 48)
    return cfg


def _model(name, **model_options):
    cfg = _cfg(name)
    cfg.merge_from_dict({f'model.{k}': v for k, v in model_options.items()})
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _batch(model, size=48, n=2, box=None):
    torch.manual_seed(0)
    inputs = [
        torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = []
    for i in range(n):
        s = SegDataSample()
        label = torch.zeros(model.num_classes - 1)
        label[i] = label[3] = 1
        s.gt_cls_label = LabelData(data=label)
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                img_box=box or [0, size, 0, size]))
        samples.append(s)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)


def _set_iter(it):
    MessageHub.get_current_instance().update_info('iter', it)


# Settings --------------------------------------------------------------------
def test_merge_cfg_nested_and_rejects_unknown_keys():
    defaults = dict(a=1, sub=dict(x=1, y=2), opt=None)
    merged = merge_cfg(defaults, dict(sub=dict(y=3), opt=dict(z=1)), 'cfg')
    assert merged == dict(a=1, sub=dict(x=1, y=3), opt=dict(z=1))
    assert defaults['sub'] == dict(x=1, y=2)  # not modified
    with pytest.raises(KeyError, match=r'cfg\.b .*allowed: a, opt, sub'):
        merge_cfg(defaults, dict(b=1), 'cfg')
    with pytest.raises(KeyError, match=r'cfg\.sub\.w .*allowed: x, y'):
        merge_cfg(defaults, dict(sub=dict(w=1)), 'cfg')


@pytest.mark.parametrize('name', sorted(TOY))
def test_misspelt_setting_is_an_error_naming_it(name):
    with pytest.raises(KeyError, match='test_cfg.bkg_thrr .*allowed'):
        _model(name, **{'test_cfg.bkg_thrr': 0.9})
    with pytest.raises(KeyError, match='train_cfg.seg_start_itr'):
        _model(name, **{'train_cfg.seg_start_itr': 5})


@pytest.mark.parametrize('name', sorted(TOY))
def test_bad_cls_source_is_an_error_at_build(name):
    with pytest.raises(ValueError, match='test_cfg.cls_source'):
        _model(name, **{'test_cfg.cls_source': 'labels'})


def test_dupl_has_one_set_of_gates_and_editing_one_has_an_effect():
    cfg = _cfg('dupl_toy')
    # The network config carries no training settings at all.
    assert set(cfg.model.network) == {
        'type', 'backbone', 'cls_head', 'aux_cls_head', 'decode_head'
    }
    model = _model('dupl_toy', **{'train_cfg.seg_start_iter': 7})
    data = _batch(model)
    seg_on = []
    for it in (7, 8):  # gate_rule 'after': on when n_iter > 7
        _set_iter(it)
        losses = model(**data, mode='loss')
        seg_on.append(losses['loss_seg_1'].item() != 0)
    _set_iter(0)
    assert seg_on == [False, True]


# Gates -----------------------------------------------------------------------
def test_gate_rules_and_at_iteration():
    _set_iter(5)
    assert is_active(None, 'after') and is_active(None, 'from')
    assert is_active(5, 'from') and not is_active(5, 'after')
    assert is_active(4, 'after')
    with pytest.raises(ValueError, match='gate rule'):
        is_active(1, 'since')
    with at_iteration(100):
        assert current_iter() == 100
    assert current_iter() == 5
    with at_iteration(None):
        assert current_iter() == 5
    _set_iter(0)


def test_gated_loss_keeps_the_graph():
    model = _model('toco_toy')
    x = torch.ones(2, requires_grad=True)
    _set_iter(0)
    off = model.gated(10, lambda: (x * 3).sum(), [x, x])
    assert off.item() == 0 and off.requires_grad
    off.backward()
    assert torch.equal(x.grad, torch.zeros(2))
    on = model.gated(None, lambda: (x * 3).sum(), x)
    assert on.item() == 6


# pseudo_labels ---------------------------------------------------------------
def test_toco_pseudo_labels_are_the_seg_loss_labels(monkeypatch):
    model = _model('toco_toy').train()
    box = [0, 40, 0, 44]
    data = _batch(model, box=box)
    gate = model.train_cfg.seg_start_iter
    before = model.pseudo_labels(**data, iteration=gate - 10)
    assert (before == 255).all()
    seen = []
    real = model.loss_seg.forward
    monkeypatch.setattr(
        model.loss_seg, 'forward',
        lambda logits, label, **kw: seen.append(label) or real(
            logits, label, **kw))
    with torch.no_grad():
        after = model.pseudo_labels(**data, iteration=gate + 10)
        _set_iter(gate + 10)
        model(**data, mode='loss')
    _set_iter(0)
    assert torch.equal(after, seen[0])
    assert (after[:, 40:] == 255).all() and (after[:, :, 44:] == 255).all()
    assert ((after >= 0) & (after <= model.num_classes - 1) |
            (after == 255)).all()


def test_dupl_pseudo_labels_one_per_network(monkeypatch):
    model = _model('dupl_toy').train()
    data = _batch(model)
    it = model.train_cfg.filter_start_iter + 1
    seen = []
    real = model.loss_seg.forward
    monkeypatch.setattr(
        model.loss_seg, 'forward',
        lambda logits, label, **kw: seen.append(label) or real(
            logits, label, **kw))
    labels = model.pseudo_labels(**data, iteration=it)
    assert isinstance(labels, list) and len(labels) == 2
    with torch.no_grad():
        _set_iter(it)
        model(**data, mode='loss')
    _set_iter(0)
    # Network 1 learns from network 2's label and vice versa.
    assert torch.equal(seen[0], labels[1])
    assert torch.equal(seen[1], labels[0])


def test_cam_and_single_stage_pseudo_labels():
    from mmseg_wsss.models.wsss import cam_to_label
    model = _model('cam_resnet_toy').eval()
    data = _batch(model)
    labels = model.pseudo_labels(**data)
    cls_label = torch.stack(
        [s.gt_cls_label.data for s in data['data_samples']])
    expected = cam_to_label(
        model.cams(data['inputs']), cls_label, bkg_thr=model.test_cfg.bkg_thr)
    assert torch.equal(labels, expected)
    model = _model('single_stage_toy').train()
    data = _batch(model)
    gate = model.train_cfg.seg_start_iter
    assert (model.pseudo_labels(**data, iteration=gate - 1) == 255).all()
    labels = model.pseudo_labels(**data, iteration=gate)
    assert labels.shape == (2, 48, 48)


# Checkpoints of e6331ef ------------------------------------------------------
@pytest.mark.parametrize('name', sorted(TOY))
def test_e6331ef_checkpoints_load(name, tmp_path):
    """A checkpoint in e6331ef's key layout (recorded key list and shapes)
    loads strictly into today's model, every tensor where it belongs."""
    with open(KEYS) as f:
        shapes = json.load(f)[name]
    model = _model(name)
    gen = torch.Generator().manual_seed(0)
    state = model.state_dict()
    old = {}
    for key, shape in shapes.items():
        new = type(model).upgrade_key(key) or key
        like = state[new]
        old[key] = torch.randn(shape, generator=gen).to(like.dtype) \
            if like.is_floating_point() else like.clone()
    assert len(old) == len(state)
    path = str(tmp_path / 'e6331ef.pth')
    torch.save(dict(meta=dict(iter=3000), state_dict=old), path)
    load_checkpoint(model, path, strict=True)
    for key, value in old.items():
        new = type(model).upgrade_key(key) or key
        assert type(model).legacy_key(new) == key
        assert torch.equal(model.state_dict()[new], value), key


def test_val_settings_apply_to_validation_only(monkeypatch):
    """test_cfg.val (the authors' cheap in-training validation) replaces the
    test settings in val_step, not in test_step (tools/test.py)."""
    model = _model('toco_toy', **{
        'test_cfg.val': dict(scales=(1.0, ), flip=False)
    }).eval()
    seen = []
    real = model.inference

    def spy(inputs, data_samples=None):
        seen.append((tuple(model.test_cfg.scales), model.test_cfg.flip))
        return real(inputs, data_samples)

    monkeypatch.setattr(model, 'inference', spy)
    inputs = [torch.randint(0, 255, (3, 48, 48), dtype=torch.uint8)]
    sample = SegDataSample()
    sample.set_metainfo(
        dict(img_shape=(48, 48), ori_shape=(48, 48), pad_shape=(48, 48)))
    data = dict(inputs=inputs, data_samples=[sample])
    model.val_step(data)
    model.test_step(data)
    assert seen == [((1.0, ), False), ((1.0, 1.25, 1.5), True)]
    assert tuple(model.test_cfg.scales) == (1.0, 1.25, 1.5)
    with pytest.raises(KeyError, match='test_cfg.val'):
        _model('toco_toy', **{'test_cfg.val': dict(scale=(1.0, ))})
