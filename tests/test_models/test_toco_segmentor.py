# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import LabelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO_ROOT

CONFIG = osp.join(REPO_ROOT, 'configs', 'toco', 'toco-noctc_toy.py')


pytestmark = pytest.mark.usefixtures('one_thread')


def _batch(model, size=48):
    torch.manual_seed(0)
    inputs = [torch.randint(0, 255, (3, size, size), dtype=torch.uint8)
              for _ in range(2)]
    samples = []
    for i in range(2):
        s = SegDataSample()
        label = torch.zeros(model.num_classes - 1)
        label[i] = label[3] = 1
        s.gt_cls_label = LabelData(data=label)
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            img_box=[0, size, 0, size - 8 * i]))
        samples.append(s)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   True)


def _model(**kwargs):
    cfg = Config.fromfile(CONFIG)
    cfg.model.data_preprocessor.size = (48, 48)
    cfg.model.update(kwargs)
    return MODELS.build(cfg.model)


def _set_iter(it):
    MessageHub.get_instance('toco_test').update_info('iter', it)


def test_seg_loss_gated_by_iteration():
    model = _model().train()
    data = _batch(model)
    _set_iter(0)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_cls_aux', 'loss_ptc', 'loss_seg'}
    assert losses['loss_seg'].item() == 0
    sum(losses.values()).backward()
    head_grads = [p.grad for p in model.network.decode_head.parameters()]
    assert all(g is None or g.abs().sum() == 0 for g in head_grads)

    model.zero_grad()
    _set_iter(300)  # the code: `if n_iter <= 300:` off (toy gate 300)
    assert model(**data, mode='loss')['loss_seg'].item() == 0
    _set_iter(301)
    losses = model(**data, mode='loss')
    assert losses['loss_seg'].item() > 0
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.network.decode_head.parameters())
    _set_iter(0)


def test_coco_stages_ptc_gate_and_aux_cam_labels(monkeypatch):
    """ToCo's COCO stages: no PTC and aux-CAM seg labels until 12k."""
    model = _model().train()
    model.train_cfg.update(
        seg_start_iter=8, aux_label_end_iter=12, ptc_start_iter=12)
    data = _batch(model)
    used = []
    import mmseg_wsss.models.segmentors.toco_segmentor as mod
    real = mod.refine_cams_with_bkg

    def spy(par, imgs, cams, *args, **kwargs):
        used.append(cams)
        return real(par, imgs, cams, *args, **kwargs)

    monkeypatch.setattr(mod, 'refine_cams_with_bkg', spy)
    cams = model.training_cams(model.network, data['inputs'])
    for it, ptc_on, seg_on, cam_index in [(0, False, False, None),
                                          (8, False, False, None),
                                          (9, False, True, 1),
                                          (12, False, True, 1),
                                          (13, True, True, 0)]:
        _set_iter(it)
        used.clear()
        losses = model(**data, mode='loss')
        assert (losses['loss_ptc'].item() != 0) == ptc_on, it
        assert (losses['loss_seg'].item() != 0) == seg_on, it
        if cam_index is None:
            assert not used
        else:
            torch.testing.assert_close(used[0], cams[cam_index])
    _set_iter(0)


def test_predict_seg_and_cam_outputs():
    model = _model().eval()
    data = _batch(model)
    samples = data['data_samples']
    for s in samples:
        s.set_metainfo(dict(pad_shape=(48, 48)))
    out = model.predict(data['inputs'], samples)
    probs = out[0].seg_logits.data
    assert probs.shape == (model.num_classes, 48, 48)
    torch.testing.assert_close(probs.sum(0), torch.ones(48, 48))
    model.test_cfg.output = 'cam'
    out = model.predict(data['inputs'], samples)
    present = {0, 1, 4}  # background + classes 0 and 3 of image 0
    assert set(out[0].pred_sem_seg.data.unique().tolist()) <= present
    with pytest.raises(ValueError, match='output'):
        _model(test_cfg=dict(output='nope'))


@pytest.mark.parametrize('config',
                         ['toco/toco-noctc_toy.py', 'dupl/dupl_toy.py'])
def test_reuse_forward_cam(config):
    """train_cfg.reuse_forward_cam: the training forward's features give
    the unflipped scale-1.0 CAMs (for scales 1.0 / 0.5 / 1.5, 6 passes of
    each image through each backbone instead of 7; DuPL adds its strong
    view), the losses the same up to float rounding; a drop-path backbone
    keeps the extra pass."""
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', config))
    cfg.model.data_preprocessor.size = (48, 48)

    def run(reuse, drop_path=0.):
        model_cfg = cfg.model.copy()
        model_cfg.train_cfg = dict(
            model_cfg.train_cfg, reuse_forward_cam=reuse)
        model_cfg.network.backbone.drop_path_rate = drop_path
        torch.manual_seed(0)
        model = MODELS.build(model_cfg).train()
        data = _batch(model)
        images = []
        for net in getattr(model, 'students', None) or [model.network]:
            net.backbone.register_forward_hook(
                lambda m, args, out: images.append(args[0].shape[0]))
        _set_iter(10**5)  # every gate open
        torch.manual_seed(1)
        losses = model(**data, mode='loss')
        _set_iter(0)
        return losses, sum(images)

    nets = 2 if config.startswith('dupl') else 1
    base, n_base = run(False)
    reused, n_reused = run(True)
    strong = 2 * 2 if nets == 2 else 0  # DuPL's strong views (batch 2)
    assert n_base == nets * 7 * 2 + strong
    assert n_reused == nets * 6 * 2 + strong
    assert set(base) == set(reused)
    for key in base:
        torch.testing.assert_close(
            reused[key], base[key], rtol=1e-4, atol=1e-5, msg=key)
    _, n_drop = run(True, drop_path=0.1)
    assert n_drop == n_base
