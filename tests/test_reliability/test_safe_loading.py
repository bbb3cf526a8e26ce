# Copyright (c) OpenMMLab. All rights reserved.
"""Input files must not run code: image-level label ``.npy`` files and the
checkpoints of the model converters load without executing a pickle's
payload, while the formats they must read still load."""
import argparse
import datetime
import importlib.util
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from conftest import REPO_ROOT
from mmseg_wsss.datasets.cls_labels import (RefusedPickleError,
                                            load_cls_labels)

pytestmark = pytest.mark.usefixtures('one_thread')

CONVERTERS = osp.join(REPO_ROOT, 'tools', 'model_converters')
# ``os.system`` is ``posix.system`` on Linux/macOS, ``nt.system`` on Windows.
SYSTEM = f'{os.system.__module__}.system'


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'_reliability_{name}', osp.join(CONVERTERS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Payload:
    """Runs ``touch MARKER`` when unpickled by a trusting loader."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch "{self.marker}"', )


@pytest.fixture
def marker(tmp_path):
    """The file a payload creates if it runs."""
    return tmp_path / 'MARKER'


# --------------------------------------------------- image-level label .npy


def _onehot(ids, dtype, length=20):
    vec = np.zeros(length, dtype=dtype)
    vec[np.asarray(ids, dtype=int) - 1] = 1
    return vec


@pytest.mark.parametrize('dtype', [np.float32, np.int64, np.uint8, bool])
def test_toco_onehot_npy_loads(tmp_path, dtype):
    """ToCo's cls_labels_onehot.npy: ``np.save(path, dict)`` of image name
    -> one-hot vector over the 20 VOC foreground classes."""
    path = str(tmp_path / 'cls_labels_onehot.npy')
    np.save(
        path, {
            '2007_000032': _onehot([1, 15], dtype),
            '2007_000039': _onehot([20], dtype),
            '2007_000063': _onehot([8, 12], dtype),
        })
    assert load_cls_labels(path) == {
        '2007_000032': [1, 15],
        '2007_000039': [20],
        '2007_000063': [8, 12],
    }


def test_numpy1_pickle_names_load(tmp_path):
    """Files written by numpy 1.x name ``numpy.core.multiarray`` (numpy 2.x
    ``numpy._core``); protocol-2 pickles also encode bytes through
    ``_codecs.encode``. Both load."""
    from numpy.lib import format as npy_format
    array = np.empty((), dtype=object)
    array[()] = {'2007_000032': _onehot([1, 15], np.float32)}
    raw = pickle.dumps(array, protocol=2)
    raw = raw.replace(b'numpy._core.multiarray\n', b'numpy.core.multiarray\n')
    assert b'cnumpy.core.multiarray\n' in raw and b'_codecs' in raw
    path = str(tmp_path / 'np1.npy')
    with open(path, 'wb') as f:
        npy_format.write_array_header_1_0(f, {
            'descr': '|O',
            'fortran_order': False,
            'shape': ()
        })
        f.write(raw)
    assert load_cls_labels(path) == {'2007_000032': [1, 15]}


def test_payloads_are_live(tmp_path, marker):
    """The crafted files below do run code under a trusting loader (what
    the code did before): the refusals are not vacuous."""
    path = str(tmp_path / 'evil.npy')
    np.save(path, {'2007_000032': Payload(marker)})
    np.load(path, allow_pickle=True)
    assert marker.exists()
    marker.unlink()
    ckpt = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': Payload(marker)}, ckpt)
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize('where', ['in_dict', 'whole_array'])
def test_crafted_npy_is_refused(tmp_path, marker, where):
    path = str(tmp_path / 'cls_labels_onehot.npy')
    if where == 'in_dict':
        obj = {
            '2007_000032': _onehot([1], np.float32),
            '2007_000039': Payload(marker)
        }
    else:
        obj = Payload(marker)  # saved as a 0-d object array
    np.save(path, obj, allow_pickle=True)
    with pytest.raises(RefusedPickleError) as info:
        load_cls_labels(path)
    msg = str(info.value)
    assert path in msg and SYSTEM in msg and 'arbitrary code' in msg
    assert not marker.exists()


def test_plain_and_damaged_npy(tmp_path):
    # A plain array loads with allow_pickle=False and is a wrong structure.
    plain = str(tmp_path / 'plain.npy')
    np.save(plain, np.zeros((2, 20), np.float32))
    with pytest.raises(ValueError, match='expected a pickled dict'):
        load_cls_labels(plain)
    # A truncated pickle is an error naming the file.
    full = str(tmp_path / 'full.npy')
    np.save(full, {'a': _onehot([1], np.float32)})
    cut = str(tmp_path / 'cut.npy')
    with open(full, 'rb') as f, open(cut, 'wb') as g:
        g.write(f.read()[:-20])
    with pytest.raises(ValueError, match='cut.npy: damaged'):
        load_cls_labels(cut)
    # Not a .npy at all.
    text = tmp_path / 'text.npy'
    text.write_text('{"a": [1]}')
    with pytest.raises(ValueError, match='text.npy is not a readable .npy'):
        load_cls_labels(str(text))


# ------------------------------------------------------ model converters


def _runner_checkpoint(state_dict):
    """What an mmengine Runner saves besides the weights: numpy scalars in
    meta, HistoryBuffers in the message hub, optimizer state."""
    return dict(
        meta=dict(
            epoch=0,
            iter=3,
            seed=np.int64(0),
            mmengine_version='0.10.7',
            dataset_meta=dict(classes=('background', 'a'))),
        state_dict=state_dict,
        message_hub=dict(
            log_scalars={'train/lr': HistoryBuffer([1e-3, 9e-4], [1, 1])},
            runtime_info=dict(iter=3, max_iters=np.int64(10)),
            resumed_keys=dict(iter=False)),
        optimizer=dict(
            state={}, param_groups=[dict(lr=1e-3, betas=(0.9, 0.999))]))


def test_extract_backbone_safe_loading(tmp_path, marker):
    tool = _load_tool('extract_backbone')
    weights = {'backbone.w': torch.ones(2), 'head.w': torch.zeros(1)}
    # A Runner checkpoint converts weights-only.
    src, dst = str(tmp_path / 'iter_3.pth'), str(tmp_path / 'bb.pth')
    torch.save(_runner_checkpoint(weights), src)
    assert tool.main([src, dst]) == 0
    out = torch.load(dst, weights_only=True)['state_dict']
    assert list(out) == ['w'] and torch.equal(out['w'], torch.ones(2))
    # A crafted one is refused, and nothing ran.
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=weights, meta=Payload(marker)), evil)
    with pytest.raises(pickle.UnpicklingError) as info:
        tool.main([evil, str(tmp_path / 'evil_out.pth')])
    msg = str(info.value)
    assert evil in msg and SYSTEM in msg and '--unsafe-pickle' in msg
    assert not marker.exists()
    assert not osp.exists(tmp_path / 'evil_out.pth')
    # A foreign object a trusted file may hold: only with the flag.
    other = str(tmp_path / 'other.pth')
    torch.save(
        dict(state_dict=weights, args=argparse.Namespace(lr=0.1)), other)
    with pytest.raises(pickle.UnpicklingError, match='--unsafe-pickle'):
        tool.main([other, dst])
    assert tool.main([other, dst, '--unsafe-pickle']) == 0
    assert 'unpickling can run arbitrary code' in \
        tool.UNSAFE_PICKLE_HELP.lower()


def test_timm2wsss_vit_safe_loading(tmp_path, marker):
    tool = _load_tool('timm2wsss_vit')
    weights = {
        'cls_token': torch.zeros(1, 1, 4),
        'pos_embed': torch.zeros(1, 5, 4),
        'head.weight': torch.zeros(3, 4)
    }
    # A DeiT training checkpoint (weights + argparse namespace) converts
    # weights-only.
    src, dst = str(tmp_path / 'deit.pth'), str(tmp_path / 'out.pth')
    torch.save(dict(model=weights, args=argparse.Namespace(lr=5e-4)), src)
    tool.main([src, dst])
    assert set(torch.load(dst,
                          weights_only=True)) == {'cls_token', 'pos_embed'}
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(model=weights, args=Payload(marker)), evil)
    with pytest.raises(pickle.UnpicklingError) as info:
        tool.main([evil, str(tmp_path / 'evil_out.pth')])
    msg = str(info.value)
    assert evil in msg and SYSTEM in msg and '--unsafe-pickle' in msg
    assert not marker.exists()
    other = str(tmp_path / 'other.pth')
    torch.save(dict(model=weights, saved=datetime.date(2021, 1, 1)), other)
    with pytest.raises(pickle.UnpicklingError, match='--unsafe-pickle'):
        tool.main([other, dst])
    os.remove(dst)
    tool.main([other, dst, '--unsafe-pickle'])
    assert osp.isfile(dst)


def test_wr38_to_wsss_safe_loading(tmp_path, marker):
    tool = _load_tool('wr38_to_wsss')
    weights = {'conv1a.weight': torch.zeros(64, 3, 3, 3)}
    plain = str(tmp_path / 'plain.pth')
    torch.save(weights, plain)
    assert torch.equal(
        tool.load_checkpoint_file(plain)['conv1a.weight'],
        weights['conv1a.weight'])
    evil = str(tmp_path / 'evil.pth')
    torch.save(dict(weights, meta=Payload(marker)), evil)
    with pytest.raises(pickle.UnpicklingError) as info:
        tool.main([evil, str(tmp_path / 'out.pth')])
    msg = str(info.value)
    assert evil in msg and SYSTEM in msg and '--unsafe-pickle' in msg
    assert not marker.exists()
    other = str(tmp_path / 'other.pth')
    torch.save(
        dict(state_dict=weights, saved=datetime.date(2021, 1, 1)), other)
    with pytest.raises(pickle.UnpicklingError, match='--unsafe-pickle'):
        tool.main([other, str(tmp_path / 'out.pth')])
    # With the flag the file loads; the conversion then reports what the
    # (deliberately incomplete) weights lack.
    with pytest.raises(KeyError, match='missing WideResNet-38 tensors'):
        tool.main([other, str(tmp_path / 'out.pth'), '--unsafe-pickle'])
