# Copyright (c) OpenMMLab. All rights reserved.
"""CAMClsHead and CAMSegmentor on tiny inputs."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import LabelData

import mmseg_wsss  # noqa: F401  (registers modules, applies compat)
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules
from mmseg_wsss.models.heads import CAMClsHead
from mmseg_wsss.models.segmentors import CAMSegmentor
from mmseg_wsss.registry import MODELS

register_all_modules()


pytestmark = pytest.mark.usefixtures('one_thread')


def _samples(labels, shape=(32, 32), ori_shape=None):
    out = []
    for lab in labels:
        s = SegDataSample(
            metainfo=dict(
                img_shape=shape, ori_shape=ori_shape or shape,
                pad_shape=shape))
        s.gt_cls_label = LabelData(data=torch.tensor(lab, dtype=torch.float))
        out.append(s)
    return out


# ------------------------------------------------------------------ head ---


@pytest.mark.parametrize('pooling', ['gap', 'gmp'])
def test_cam_cls_head_logits_and_loss(pooling):
    torch.manual_seed(0)
    head = CAMClsHead(in_channels=6, num_classes=4, pooling=pooling)
    head.init_weights()
    assert head.classifier.weight.shape == (3, 6, 1, 1)
    assert head.classifier.bias is None
    feat = torch.randn(2, 6, 5, 7)
    logits = head(feat)
    pooled = feat.mean(dim=(2, 3)) if pooling == 'gap' else feat.amax(
        dim=(2, 3))
    expected = pooled @ head.classifier.weight[:, :, 0, 0].t()
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, expected)
    # a tuple of features: in_index -1 selects the last
    torch.testing.assert_close(head((torch.randn(2, 6, 3, 3), feat)), logits)

    labels = [[1., 0., 1.], [0., 1., 0.]]
    losses = head.loss(feat, _samples(labels))
    assert set(losses) == {'loss_cls'}
    ref = F.multilabel_soft_margin_loss(logits, torch.tensor(labels))
    torch.testing.assert_close(losses['loss_cls'], ref)
    # loss_by_feat on arbitrary logits (not only near-zero init ones)
    big = torch.randn(2, 3) * 5
    torch.testing.assert_close(
        head.loss_by_feat(big, _samples(labels))['loss_cls'],
        F.multilabel_soft_margin_loss(big, torch.tensor(labels)))


def test_mmseg_sigmoid_ce_equals_multilabel_soft_margin():
    loss = MODELS.build(
        dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_name='loss_cls'))
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 5, generator=g) * 3
    target = (torch.rand(4, 5, generator=g) > 0.5).float()
    torch.testing.assert_close(
        loss(logits, target),
        F.multilabel_soft_margin_loss(logits, target))


def test_cam_cls_head_gap_cam_mean_is_logits():
    torch.manual_seed(1)
    head = CAMClsHead(in_channels=5, num_classes=3, pooling='gap')
    feat = torch.randn(2, 5, 4, 6)
    cam = head.cam(feat)
    assert cam.shape == (2, 2, 4, 6)
    torch.testing.assert_close(cam.mean(dim=(2, 3)), head(feat))
    # raw CAM: not rectified
    assert (cam < 0).any()


@pytest.mark.parametrize('kwargs', [
    dict(pooling='avg'),
    dict(num_classes=1),
    dict(num_classes=0),
])
def test_cam_cls_head_invalid(kwargs):
    cfg = dict(in_channels=4, num_classes=3)
    cfg.update(kwargs)
    with pytest.raises(ValueError):
        CAMClsHead(**cfg)


def test_cam_cls_head_missing_labels_raises():
    head = CAMClsHead(in_channels=4, num_classes=3)
    s = SegDataSample(metainfo=dict(img_path='x.jpg'))
    with pytest.raises(KeyError, match='gt_cls_label'):
        head.loss(torch.randn(1, 4, 2, 2), [s])


def test_cam_cls_head_single_foreground_class_loss():
    head = CAMClsHead(in_channels=4, num_classes=2)
    feat = torch.randn(3, 4, 2, 2)
    labels = [[1.], [0.], [1.]]
    losses = head.loss(feat, _samples(labels))
    torch.testing.assert_close(
        losses['loss_cls'],
        F.multilabel_soft_margin_loss(head(feat), torch.tensor(labels)))


# ------------------------------------------------------------- segmentor ---

NUM_CLASSES = 4  # background + 3


def _model_cfg(**test_cfg):
    return ConfigDict(
        type='CAMSegmentor',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=(32, 32)),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=8,
            base_channels=8,
            out_indices=(3, ),
            strides=(1, 2, 1, 1),
            dilations=(1, 1, 2, 4),
            norm_cfg=dict(type='BN', requires_grad=True)),
        cls_head=dict(
            type='CAMClsHead', in_channels=64, num_classes=NUM_CLASSES),
        test_cfg=dict(test_cfg))


def _build(**test_cfg):
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(**test_cfg))
    model.init_weights()
    return model


def _batch(labels, ori_shape=(32, 32)):
    g = torch.Generator().manual_seed(4)
    inputs = [
        torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
        for _ in labels
    ]
    return dict(
        inputs=inputs,
        data_samples=_samples(labels, (32, 32), ori_shape))


def test_cam_segmentor_build_and_loss():
    model = _build()
    assert isinstance(model, CAMSegmentor)
    assert model.num_classes == NUM_CLASSES
    assert model.test_cfg.bkg_thr == 0.5 and model.test_cfg.flip
    model.train()
    data = model.data_preprocessor(
        _batch([[1., 0., 1.], [0., 1., 0.]]), training=True)
    assert data['inputs'].shape == (2, 3, 32, 32)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls'}
    assert losses['loss_cls'].ndim == 0
    logits = model._forward(data['inputs'])
    torch.testing.assert_close(
        losses['loss_cls'],
        F.multilabel_soft_margin_loss(
            logits, torch.tensor([[1., 0., 1.], [0., 1., 0.]])))
    losses['loss_cls'].backward()
    conv1 = model.backbone.stem[0].weight
    assert conv1.grad is not None and conv1.grad.abs().sum() > 0
    assert model.cls_head.classifier.weight.grad.abs().sum() > 0


def test_cam_segmentor_forward_tensor_is_logits():
    model = _build().eval()
    data = model.data_preprocessor(_batch([[1., 0., 0.]]), training=False)
    logits = model(data['inputs'], data['data_samples'], mode='tensor')
    assert logits.shape == (1, NUM_CLASSES - 1)
    feats = model.extract_feat(data['inputs'])
    torch.testing.assert_close(logits, model.cls_head(feats))
    torch.testing.assert_close(logits, model._forward(data['inputs']))


def test_cam_segmentor_predict_shapes():
    model = _build().eval()
    data = model.data_preprocessor(
        _batch([[1., 0., 1.], [0., 0., 1.]], ori_shape=(40, 24)),
        training=False)
    results = model(**data, mode='predict')
    assert len(results) == 2
    for res in results:
        assert res.pred_sem_seg.data.shape == (1, 40, 24)
        assert res.seg_logits.data.shape == (NUM_CLASSES, 40, 24)
        pred = res.pred_sem_seg.data
        assert pred.min() >= 0 and pred.max() < NUM_CLASSES
        # the background channel is the constant bkg_thr
        torch.testing.assert_close(res.seg_logits.data[0],
                                   torch.full((40, 24), 0.5))
    # without data samples (no original shape): the input size
    results = model.predict(data['inputs'])
    assert results[0].pred_sem_seg.data.shape == (1, 32, 32)


def test_cam_segmentor_cls_source_gt():
    # bkg_thr=0: every pixel with a positive CAM of a present class is
    # foreground, so only the absence of a class keeps it out.
    model = _build(cls_source='gt', bkg_thr=0.0).eval()
    labels = [[0., 1., 0.], [1., 0., 1.]]
    data = model.data_preprocessor(_batch(labels), training=False)
    present = model.present_classes(data['inputs'], data['data_samples'])
    assert torch.equal(present, torch.tensor(labels))
    results = model.predict(data['inputs'], data['data_samples'])
    ids0 = set(results[0].pred_sem_seg.data.unique().tolist())
    ids1 = set(results[1].pred_sem_seg.data.unique().tolist())
    assert ids0 <= {0, 2} and 2 in ids0
    assert ids1 <= {0, 1, 3} and ids1 & {1, 3}
    # absent classes score 0 everywhere
    assert (results[0].seg_logits.data[1] == 0).all()
    assert (results[0].seg_logits.data[3] == 0).all()
    assert (results[1].seg_logits.data[2] == 0).all()
    with pytest.raises(ValueError, match='gt'):
        model.present_classes(data['inputs'])


def test_cam_segmentor_cls_source_pred_keeps_top_class():
    # cls_thr=1.0: no sigmoid score passes, only the top class is kept.
    model = _build(cls_source='pred', cls_thr=1.0, bkg_thr=0.0).eval()
    data = model.data_preprocessor(
        _batch([[1., 1., 1.], [1., 1., 1.]]), training=False)
    logits = model._forward(data['inputs'])
    present = model.present_classes(data['inputs'])
    expected = F.one_hot(logits.argmax(1), NUM_CLASSES - 1).float()
    assert torch.equal(present, expected)
    results = model.predict(data['inputs'], data['data_samples'])
    for i, res in enumerate(results):
        top = int(logits[i].argmax()) + 1
        ids = set(res.pred_sem_seg.data.unique().tolist())
        assert ids <= {0, top} and top in ids
    # cls_thr=0: every class passes
    model.test_cfg.cls_thr = 0.0
    assert torch.equal(
        model.present_classes(data['inputs']), torch.ones(2, 3))


def test_cam_segmentor_inference_matches_core():
    model = _build(scales=(1.0, 0.5), cls_source='gt').eval()
    data = model.data_preprocessor(_batch([[1., 0., 1.]]), training=False)
    with torch.no_grad():
        scores = model.inference(data['inputs'], data['data_samples'])
        cams = model.cams(data['inputs'])
    assert scores.shape == (1, NUM_CLASSES, 32, 32)
    assert cams.shape == (1, NUM_CLASSES - 1, 32, 32)
    assert cams.min() >= 0 and cams.max() < 1
    torch.testing.assert_close(scores[0, 1], cams[0, 0])
    torch.testing.assert_close(scores[0, 3], cams[0, 2])


def test_cam_segmentor_invalid_cls_source():
    with pytest.raises(ValueError, match='cls_source'):
        MODELS.build(_model_cfg(cls_source='both'))
