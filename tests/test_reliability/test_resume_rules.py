# Copyright (c) OpenMMLab. All rights reserved.
"""What ``--resume`` resumes from (:func:`resolve_resume`), in process."""
import logging
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmseg_wsss.engine.runner import (checkpoint_problem,
                                      find_resume_checkpoint, resolve_resume,
                                      write_text_atomic)


def _save(path, value=0.0):
    torch.save({'state_dict': {'w': torch.full((4, ), value)}}, path)


def _cfg(work_dir):
    return Config(dict(work_dir=str(work_dir), load_from=None, resume=False))


def test_checkpoint_problem(tmp_path):
    good = str(tmp_path / 'iter_1.pth')
    _save(good, 1.25)
    assert checkpoint_problem(good) is None
    assert checkpoint_problem(str(tmp_path / 'none.pth')) == 'no such file'
    empty = tmp_path / 'iter_2.pth'
    empty.write_bytes(b'')
    assert checkpoint_problem(str(empty)) == 'empty file'
    data = open(good, 'rb').read()
    truncated = tmp_path / 'iter_3.pth'
    truncated.write_bytes(data[:len(data) // 2])
    assert checkpoint_problem(str(truncated)) is not None
    # A flipped byte inside a record fails its CRC.
    flipped = bytearray(data)
    at = data.index(torch.full((4, ), 1.25).numpy().tobytes())
    flipped[at] ^= 0xFF
    corrupt = tmp_path / 'iter_4.pth'
    corrupt.write_bytes(bytes(flipped))
    assert 'CRC' in checkpoint_problem(str(corrupt))


def test_newest_intact_checkpoint_by_iteration(tmp_path):
    for it in (2, 10, 4):
        _save(str(tmp_path / f'iter_{it}.pth'))
    (tmp_path / 'iter_12.pth').write_bytes(b'PK\x03\x04 truncated')
    (tmp_path / 'best_mIoU_iter_4.pth').write_bytes(b'')  # not a candidate
    path, damaged = find_resume_checkpoint(str(tmp_path))
    assert path == str(tmp_path / 'iter_10.pth')
    assert [p for p, _ in damaged] == [str(tmp_path / 'iter_12.pth')]


def test_resolve_resume_auto(tmp_path):
    _save(str(tmp_path / 'iter_3.pth'))
    (tmp_path / 'iter_6.pth').write_bytes(b'garbage')
    stale = tmp_path / '.iter_9.pth.123.tmp'
    stale.write_bytes(b'half')
    cfg = _cfg(tmp_path)
    notes = resolve_resume(cfg, 'auto')
    assert cfg.resume is True
    assert cfg.load_from == str(tmp_path / 'iter_3.pth')
    assert not stale.exists()
    levels = [level for level, _ in notes]
    text = '\n'.join(message for _, message in notes)
    assert logging.WARNING in levels
    assert f'{tmp_path / "iter_6.pth"} is damaged' in text
    assert 'Falling back' in text and 'partial checkpoint' in text


def test_resolve_resume_nothing_to_resume(tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint to resume'):
        resolve_resume(_cfg(tmp_path / 'missing'), 'auto')
    (tmp_path / 'iter_3.pth').write_bytes(b'garbage')
    with pytest.raises(FileNotFoundError, match='no intact checkpoint'):
        resolve_resume(_cfg(tmp_path), 'auto')
    cfg = _cfg(tmp_path)
    notes = resolve_resume(cfg, 'auto', if_possible=True)
    assert cfg.resume is False and cfg.load_from is None
    assert 'starts from scratch' in notes[-1][1]


def test_resolve_resume_explicit_path(tmp_path):
    good = str(tmp_path / 'iter_3.pth')
    _save(good)
    cfg = _cfg(tmp_path)
    resolve_resume(cfg, good)
    assert cfg.resume is True and cfg.load_from == good
    with pytest.raises(FileNotFoundError, match='not found'):
        resolve_resume(_cfg(tmp_path), str(tmp_path / 'iter_9.pth'))
    bad = tmp_path / 'iter_6.pth'
    bad.write_bytes(b'garbage')
    with pytest.raises(RuntimeError, match='damaged'):
        resolve_resume(_cfg(tmp_path), str(bad))
    assert resolve_resume(_cfg(tmp_path), None) == []


def test_write_text_atomic(tmp_path):
    path = str(tmp_path / 'last_checkpoint')
    write_text_atomic(path, 'a')
    write_text_atomic(path, 'b')
    assert open(path).read() == 'b'
    assert os.listdir(tmp_path) == ['last_checkpoint']
    assert osp.isfile(path)
