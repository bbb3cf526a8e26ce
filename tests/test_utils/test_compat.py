# Copyright (c) OpenMMLab. All rights reserved.
"""Stack compatibility (mmcv-lite ops shim, weights-only checkpoints) and
config helpers."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.logging import HistoryBuffer

import mmseg_wsss  # noqa: F401
from mmseg_wsss.utils import (has_compiled_mmcv_ops, set_data_root,
                              sync_num_classes)

lite_only = pytest.mark.skipif(
    has_compiled_mmcv_ops(), reason='full mmcv installed: no shim')

# ------------------------------------------------------------- mmcv.ops ---


def test_point_sample_matches_grid_sample():
    from mmcv.ops import point_sample
    from mmcv.ops.point_sample import point_sample as ps2
    assert ps2 is point_sample
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 5, 6, generator=g)
    points = torch.rand(2, 7, 2, generator=g)  # (x, y) in [0, 1]
    for align in (False, True):
        out = point_sample(feat, points, align_corners=align)
        ref = F.grid_sample(
            feat, 2.0 * points.unsqueeze(2) - 1.0,
            align_corners=align).squeeze(3)
        assert out.shape == (2, 3, 7)
        torch.testing.assert_close(out, ref)
    # the centre of pixel (row 1, col 2) samples that pixel exactly
    pt = torch.tensor([[[2.5 / 6, 1.5 / 5]]]).expand(2, 1, 2)
    torch.testing.assert_close(
        point_sample(feat, pt)[..., 0], feat[:, :, 1, 2])


@lite_only
def test_compiled_only_op_raises_on_call():
    from mmcv.ops import sigmoid_focal_loss
    with pytest.raises(RuntimeError, match='mmcv'):
        sigmoid_focal_loss(torch.zeros(2, 3), torch.zeros(2).long(), 2.0, 0.25)


@lite_only
def test_other_ops_raise_module_not_found():
    with pytest.raises(ModuleNotFoundError, match='CrissCrossAttention'):
        from mmcv.ops import CrissCrossAttention  # noqa: F401
    import mmcv.ops
    with pytest.raises(ModuleNotFoundError):
        mmcv.ops.DeformConv2d  # noqa: B018
    # dunder lookups stay AttributeErrors (hasattr/copy/pickle work)
    assert not hasattr(mmcv.ops, '__wrapped__')


def test_mmseg_models_import_in_fresh_interpreter():
    code = ('import mmseg_wsss, mmseg.models, mmcv.ops; '
            'from mmseg.models.decode_heads import PointHead; '
            'print("ok", mmseg.models.__name__)')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=120,
                          cwd=osp.dirname(
                              osp.dirname(osp.dirname(osp.abspath(__file__)))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'ok mmseg.models' in proc.stdout


# --------------------------------------------------- weights-only loading ---


def _save_load(obj, tmp_path, name='ckpt.pth'):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return torch.load(path)  # default weights_only (True on torch >= 2.6)


def test_torch_load_numpy_scalars_dtypes_configdict(tmp_path):
    ckpt = dict(
        state_dict=dict(w=torch.ones(2)),
        meta=dict(
            best=np.float64(1.5),
            iter=np.int64(3),
            dtype=np.dtype('float32'),
            arr=np.arange(3),
            farr=np.array([0.5, 1.5]),
            cfg=ConfigDict(a=1, b=dict(c=2))))
    loaded = _save_load(ckpt, tmp_path)
    torch.testing.assert_close(loaded['state_dict']['w'], torch.ones(2))
    meta = loaded['meta']
    assert meta['best'] == 1.5 and isinstance(meta['best'], np.float64)
    assert meta['iter'] == 3 and isinstance(meta['iter'], np.int64)
    assert meta['dtype'] == np.dtype('float32')
    np.testing.assert_array_equal(meta['arr'], np.arange(3))
    np.testing.assert_array_equal(meta['farr'], [0.5, 1.5])
    assert meta['cfg']['a'] == 1 and meta['cfg']['b']['c'] == 2


def test_torch_load_history_buffer(tmp_path):
    buf = HistoryBuffer()
    buf.update(0.5)
    buf.update(1.5, count=2)
    ckpt = dict(
        message_hub=dict(log_scalars=dict(loss=buf)),
        meta=dict(
            best=np.float64(1.5), iter=np.int64(3), dtype=np.dtype('float32')))
    loaded = _save_load(ckpt, tmp_path)
    lb = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(lb, HistoryBuffer)
    # mean = sum of logged values / sum of counts = (0.5 + 1.5) / 3
    assert lb.current() == 1.5 and lb.mean() == pytest.approx(2 / 3)
    assert loaded['meta']['iter'] == 3


def test_torch_load_message_hub_state(tmp_path):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_compat_hub')
    hub.update_scalar('train/loss', 1.0)
    hub.update_info('iter', 5)
    loaded = _save_load(dict(message_hub=hub.state_dict()), tmp_path)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 1.


def test_torch_load_still_rejects_arbitrary_objects(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _Custom()}, path)
    with pytest.raises(Exception):
        torch.load(path)


class _Custom:
    pass


# ------------------------------------------------------------ config utils -


def _custom_root(tmp_path, name='data', classes=4):
    root = tmp_path / name
    root.mkdir()
    names = ['background'] + [f'c{i}' for i in range(1, classes)]
    (root / 'classes.txt').write_text('\n'.join(names) + '\n')
    return str(root)


def _cfg(dataset, val_dataset=None):
    return Config(
        dict(
            model=dict(
                type='CAMSegmentor',
                cls_head=dict(type='CAMClsHead', num_classes=21),
                decode_head=dict(num_classes=21, extra=[dict(num_classes=21)]),
                aux=[dict(num_classes=21), dict(other=3)],
                not_classes=21),
            train_dataloader=dict(batch_size=2, dataset=dataset),
            val_dataloader=dict(
                dataset=val_dataset
                or dict(type='WSSSVOCDataset', data_root='old/voc'))))


def test_sync_num_classes_custom(tmp_path):
    root = _custom_root(tmp_path)
    cfg = _cfg(dict(type='WSSSCustomDataset', data_root=root))
    assert sync_num_classes(cfg) == 4
    m = cfg.model
    assert m.cls_head.num_classes == 4
    assert m.decode_head.num_classes == 4
    assert m.decode_head.extra[0].num_classes == 4
    assert m.aux[0].num_classes == 4 and m.aux[1].other == 3
    assert m.not_classes == 21


def test_sync_num_classes_walks_wrappers(tmp_path):
    root = _custom_root(tmp_path)
    inner = dict(type='WSSSCustomDataset', data_root=root)
    cfg = _cfg(
        dict(
            type='ConcatDataset',
            datasets=[dict(type='RepeatDataset', times=2, dataset=inner)]))
    assert sync_num_classes(cfg) == 4
    assert cfg.model.cls_head.num_classes == 4
    assert cfg.model.decode_head.extra[0].num_classes == 4


def test_sync_num_classes_voc_and_metainfo(tmp_path):
    cfg = _cfg(dict(type='WSSSVOCDataset', data_root='x'))
    cfg.model.cls_head.num_classes = 5
    assert sync_num_classes(cfg) == 21
    assert cfg.model.cls_head.num_classes == 21
    cfg = _cfg(
        dict(
            type='WSSSCustomDataset',
            data_root='does/not/exist',
            metainfo=dict(classes=('background', 'a', 'b'))))
    assert sync_num_classes(cfg) == 3
    assert cfg.model.cls_head.num_classes == 3


def test_set_data_root(tmp_path):
    cfg = _cfg(
        dict(
            type='ConcatDataset',
            datasets=[
                dict(type='WSSSCustomDataset', data_root='a'),
                dict(type='WSSSCustomDataset', data_root='b'),
                dict(type='WSSSCustomDataset'),
            ]))
    new = str(tmp_path)
    set_data_root(cfg, new)
    assert cfg.data_root == new
    ds = cfg.train_dataloader.dataset.datasets
    assert ds[0].data_root == new and ds[1].data_root == new
    assert 'data_root' not in ds[2]
    assert cfg.val_dataloader.dataset.data_root == new
    assert 'data_root' not in cfg.train_dataloader.dataset


def test_import_after_mmseg_in_fresh_interpreter():
    code = ('import mmseg, mmseg.registry; import mmseg_wsss, mmseg.models; '
            'print("ok")')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=120,
                          cwd=osp.dirname(
                              osp.dirname(osp.dirname(osp.abspath(__file__)))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == 'ok'


def test_full_mmcv_is_left_alone(monkeypatch):
    """With compiled ops present, the shim changes nothing."""
    from mmseg_wsss.utils import compat
    monkeypatch.setattr(compat, 'has_compiled_mmcv_ops', lambda: True)
    before = sys.modules.get('mmcv.ops')
    assert compat.install_mmcv_lite_ops_shim() is False
    assert sys.modules.get('mmcv.ops') is before
