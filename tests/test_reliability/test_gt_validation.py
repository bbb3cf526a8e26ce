# Copyright (c) OpenMMLab. All rights reserved.
"""Invalid ground truth is an error naming the file, not a wrong number:
values outside the classes, a mask of another size than its image, and a
colour (RGB) mask."""
import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import TRANSFORMS
from PIL import Image

from mmseg_wsss.evaluation import MultiBranchIoUMetric, WSSSIoUMetric

CLASSES = tuple(['background'] + [f'c{i}' for i in range(1, 10)])  # C = 10
MASK = 'data/voc/SegmentationClass/2007_000032.png'
IMAGE = 'data/voc/JPEGImages/2007_000032.jpg'
BRANCHES = ('pred_sem_seg_branch1', 'pred_sem_seg_branch2')


def _sample(pred, gt, **meta):
    pred = torch.as_tensor(pred)
    sample = dict(
        pred_sem_seg=dict(data=pred[None]),
        gt_sem_seg=dict(data=torch.as_tensor(gt)),
        seg_map_path=MASK,
        img_path=IMAGE,
        ori_shape=tuple(pred.shape))
    for key in BRANCHES:
        sample[key] = dict(data=pred[None])
    sample.update(meta)
    return sample


def _metric(cls):
    metric = cls(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


METRICS = [WSSSIoUMetric, MultiBranchIoUMetric]


@pytest.mark.parametrize('cls', METRICS)
@pytest.mark.parametrize('bad', [15, 200, 10, -1])
def test_value_outside_the_classes_is_an_error(cls, bad):
    pred = torch.zeros(4, 4, dtype=torch.int64)
    gt = torch.zeros(1, 4, 4, dtype=torch.int64)
    gt[0, 0, :2] = bad
    gt[0, 1, 0] = 255  # ignore: allowed
    metric = _metric(cls)
    with pytest.raises(ValueError) as info:
        metric.process({}, [_sample(pred, gt)])
    msg = str(info.value)
    assert MASK in msg and f'[{bad}]' in msg and '(2 pixels)' in msg
    assert '0..9' in msg and 'ignore index 255' in msg
    assert not metric.results


def test_old_metric_dropped_such_values_silently():
    """What happened before: mmseg's IoUMetric bins only 0..C-1, so a pixel
    labelled 15 counts nowhere and the scores just change."""
    pred = torch.zeros(2, 2, dtype=torch.int64)
    gt = torch.tensor([[[0, 0], [0, 15]]])
    metric = _metric(IoUMetric)
    metric.process({}, [_sample(pred, gt)])  # no error
    label_area = metric.results[0][3]
    assert label_area.sum() == 3  # the 4th pixel vanished


@pytest.mark.parametrize('cls', METRICS)
def test_every_class_and_the_ignore_index_are_fine(cls):
    pred = torch.zeros(3, 5, dtype=torch.int64)
    gt = torch.cat(
        [torch.arange(10).reshape(1, 2, 5),
         torch.full((1, 1, 5), 255)], dim=1)
    metric = _metric(cls)
    metric.process({}, [_sample(pred, gt)])
    metric.process({}, [_sample(pred, torch.full((1, 3, 5), 255))])
    assert len(metric.results) == 2


@pytest.mark.parametrize('cls', METRICS)
def test_size_mismatch_names_both_sizes(cls):
    pred = torch.zeros(5, 6, dtype=torch.int64)
    gt = torch.zeros(1, 4, 6, dtype=torch.int64)
    with pytest.raises(ValueError) as info:
        _metric(cls).process({}, [_sample(pred, gt)])
    msg = str(info.value)
    assert MASK in msg and IMAGE in msg
    assert '4x6' in msg and '5x6' in msg and 'size of its image' in msg


def test_size_mismatch_without_paths_still_explains():
    pred = torch.zeros(5, 6, dtype=torch.int64)
    sample = _sample(pred, torch.zeros(1, 4, 6, dtype=torch.int64))
    for key in ('seg_map_path', 'img_path', 'ori_shape'):
        sample.pop(key)
    with pytest.raises(ValueError, match='no seg_map_path.*4x6.*5x6'):
        _metric(WSSSIoUMetric).process({}, [sample])


@pytest.mark.parametrize('cls', METRICS)
def test_rgb_mask_from_the_pipeline_is_an_error(cls, tmp_path):
    """An RGB png through mmseg's LoadAnnotations ('unchanged' decoding)
    and PackWSSSInputs arrives as gt_sem_seg (H, W, 3); mmseg's metric then
    failed with 'IndexError: too many indices' naming no file."""
    h, w = 5, 7
    path = str(tmp_path / 'colour.png')
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[1:3, 2:5] = (128, 0, 0)  # VOC's colour of class 1
    Image.fromarray(rgb, mode='RGB').save(path)
    results = dict(
        img=np.zeros((h, w, 3), np.uint8),
        img_path=str(tmp_path / 'colour.jpg'),
        seg_map_path=path,
        seg_fields=[],
        reduce_zero_label=False,
        ori_shape=(h, w),
        img_shape=(h, w))
    results = TRANSFORMS.build(dict(type='LoadAnnotations'))(results)
    with pytest.warns(UserWarning, match='segmentation map is 2D'):
        packed = TRANSFORMS.build(dict(type='PackWSSSInputs'))(results)
    sample = packed['data_samples'].to_dict()
    assert tuple(sample['gt_sem_seg']['data'].shape) == (h, w, 3)
    pred = torch.zeros(1, h, w, dtype=torch.int64)
    sample['pred_sem_seg'] = dict(data=pred)
    for key in BRANCHES:
        sample[key] = dict(data=pred)
    with pytest.raises(ValueError) as info:
        _metric(cls).process({}, [sample])
    msg = str(info.value)
    assert path in msg and 'not a single-channel' in msg
    assert f'({h}, {w}, 3)' in msg


def _random_case(seed):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, 10, (6, 8), generator=gen)
    gt = torch.randint(0, 10, (1, 6, 8), generator=gen)
    gt[0, 0] = 255
    return pred, gt


def test_valid_masks_give_the_same_numbers():
    reference, ours = _metric(IoUMetric), _metric(WSSSIoUMetric)
    multi = _metric(MultiBranchIoUMetric)
    for seed in range(3):
        sample = _sample(*_random_case(seed))
        for metric in (reference, ours, multi):
            metric.process({}, [sample])
    expected = reference.compute_metrics(reference.results)
    got = ours.compute_metrics(ours.results)
    got_multi = multi.compute_metrics(multi.results)
    for key, value in expected.items():
        assert got[key] == value and got_multi[key] == value, key


def test_format_only_needs_no_ground_truth(tmp_path):
    metric = WSSSIoUMetric(format_only=True, output_dir=str(tmp_path))
    metric.dataset_meta = dict(classes=CLASSES)
    sample = _sample(torch.zeros(2, 2, dtype=torch.int64), [[[0]]])
    sample.pop('gt_sem_seg')
    metric.process({}, [sample])
    assert (tmp_path / '2007_000032.png').exists()
