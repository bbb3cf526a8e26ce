# Copyright (c) OpenMMLab. All rights reserved.
"""Checkpoint files that survive faults, and loading that fails loudly.

- :func:`save_checkpoint_atomic`: a Runner checkpoint is written under a
  hidden temporary name and renamed into place, so a kill or a full disk
  during the save never leaves a half-written ``iter_N.pth``.
- :func:`find_resume_checkpoint`: the newest checkpoint of a work dir that
  is intact, falling back past damaged ones (and saying so).
- :func:`resolve_resume`: what ``tools/train.py --resume`` resumes from.
- :func:`load_checkpoint_strict`: test-time loading; missing or unexpected
  keys and shape mismatches are an error naming them and both class lists.
"""
import glob
import logging
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

# Re-exported: the hooks write their text files through this module.
from mmseg_wsss_light.fileio import write_text_atomic  # noqa: F401

# Files written by :func:`save_checkpoint_atomic` before their rename.
TMP_PATTERN = '.*.pth.*.tmp'
_CKPT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def _is_local(path: str) -> bool:
    return '://' not in path


def _fsync_file(path: str) -> None:
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint_atomic(runner, out_dir: str, filename: str,
                           **kwargs) -> None:
    """``runner.save_checkpoint`` that never leaves a partial file.

    The checkpoint is saved as ``.{filename}.{pid}.tmp`` in ``out_dir``,
    flushed to disk and renamed to ``filename`` (an atomic replace on one
    file system); if the save fails (no space left, interrupted) the
    temporary file is removed and the error propagates. The previous
    checkpoints stay as they were. Non-local ``out_dir`` (``s3://`` ...)
    is written directly, as mmengine does.

    Args:
        runner (Runner): The runner (its ``save_checkpoint`` builds the
            checkpoint and calls the ``before_save_checkpoint`` hooks).
        out_dir (str): Folder of the checkpoint.
        filename (str): File name of the checkpoint.
        **kwargs: Further arguments of ``Runner.save_checkpoint``.
    """
    if not _is_local(out_dir) or kwargs.get('file_client_args') or \
            kwargs.get('backend_args'):
        runner.save_checkpoint(out_dir, filename, **kwargs)
        return
    tmp_name = f'.{filename}.{os.getpid()}.tmp'
    tmp, final = osp.join(out_dir, tmp_name), osp.join(out_dir, filename)
    try:
        runner.save_checkpoint(out_dir, tmp_name, **kwargs)
        if is_main_process():  # Runner.save_checkpoint is master-only
            _fsync_file(tmp)
            os.replace(tmp, final)
            _fsync_dir(out_dir)
    except BaseException:
        if is_main_process() and osp.exists(tmp):
            os.remove(tmp)
        raise


def checkpoint_problem(path: str) -> Optional[str]:
    """Why the checkpoint file at ``path`` cannot be loaded (None: intact).

    torch saves checkpoints as zip archives with a CRC per record: a
    truncated or overwritten file fails the archive's CRC test without
    unpickling anything. Other formats are loaded weights-only.
    """
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'empty file'
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return None if bad is None else f'bad CRC in record {bad}'
        torch.load(path, map_location='cpu', weights_only=True)
        return None
    except Exception as e:  # noqa: BLE001  (any failure means unusable)
        return f'{type(e).__name__}: {e}'


def _step(path: str) -> int:
    match = _CKPT_NAME.match(osp.basename(path))
    return int(match.group(1)) if match else -1


def resume_candidates(work_dir: str) -> List[str]:
    """Checkpoints of ``work_dir``, the newest first.

    ``iter_N.pth`` / ``epoch_N.pth`` ordered by N; a ``last_checkpoint``
    pointing at another name comes first.
    """
    paths = [
        p for p in glob.glob(osp.join(work_dir, '*.pth'))
        if _CKPT_NAME.match(osp.basename(p))
    ]
    paths.sort(key=_step, reverse=True)
    last_file = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last_file):
        with open(last_file) as f:
            last = f.read().strip()
        if last and osp.isfile(last) and not _CKPT_NAME.match(
                osp.basename(last)) and last not in paths:
            paths.insert(0, last)
    return paths


def find_resume_checkpoint(
        work_dir: str) -> Tuple[Optional[str], List[Tuple[str, str]]]:
    """The newest intact checkpoint of ``work_dir``.

    Returns:
        tuple: The checkpoint path (None if there is none) and the damaged
        newer ones that were passed over, as (path, reason) pairs.
    """
    damaged = []
    for path in resume_candidates(work_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, damaged
        damaged.append((path, problem))
    return None, damaged


def remove_stale_tmp_files(work_dir: str) -> List[str]:
    """Remove the temporary files of saves that never finished."""
    removed = []
    for path in glob.glob(osp.join(work_dir, TMP_PATTERN)):
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:  # another rank was first
            pass
    return removed


def resolve_resume(cfg: Config,
                   resume: Optional[str],
                   if_possible: bool = False) -> List[Tuple[int, str]]:
    """Set ``cfg.resume`` / ``cfg.load_from`` for ``tools/train.py``.

    Args:
        cfg (Config): The training config (its ``work_dir`` is set).
        resume (str, optional): 'auto' (resume from the newest intact
            checkpoint of the work dir; an error if there is none), a
            checkpoint path (resume from it; an error if it is damaged),
            or None (no resume asked).
        if_possible (bool): With ``resume='auto'``: start from scratch,
            saying so, when the work dir holds no intact checkpoint (for
            jobs that are requeued with the same command).

    Returns:
        list[tuple[int, str]]: (log level, message) of what was decided and
        passed over, for the run's log (the Runner's logger does not exist
        yet).

    Raises:
        FileNotFoundError: Nothing to resume from (and not
            ``if_possible``), or the given checkpoint does not exist.
        RuntimeError: The given checkpoint is damaged.
    """
    notes: List[Tuple[int, str]] = []
    if resume is None:
        return notes
    work_dir = cfg.work_dir
    if resume != 'auto':
        problem = checkpoint_problem(resume)
        if problem == 'no such file':
            raise FileNotFoundError(f'--resume: checkpoint not found: '
                                    f'{resume}')
        if problem is not None:
            raise RuntimeError(
                f'--resume: checkpoint {resume} is damaged ({problem}). Use '
                '--resume without a value to resume from the newest intact '
                f'checkpoint of the work dir {work_dir}.')
        cfg.resume, cfg.load_from = True, resume
        return notes

    exists = osp.isdir(work_dir)
    stale = remove_stale_tmp_files(work_dir) if exists else []
    if stale:
        notes.append((logging.INFO,
                      f'Removed {len(stale)} partial checkpoint file(s) of a '
                      f'save that did not finish: {stale}'))
    path, damaged = find_resume_checkpoint(work_dir) if exists else (None, [])
    for bad, problem in damaged:
        notes.append((logging.WARNING,
                      f'Checkpoint {bad} is damaged ({problem}): skipped.'))
    if path is None:
        what = 'no intact checkpoint' if damaged else 'no checkpoint'
        if not if_possible:
            raise FileNotFoundError(
                f'--resume: {what} to resume from in the work dir '
                f'{work_dir} (is --work-dir right?). Use '
                '--resume-if-possible to start from scratch when there is '
                'nothing to resume.')
        notes.append((logging.WARNING, f'Nothing to resume in {work_dir} '
                      f'({what}): training starts from scratch.'))
        cfg.resume = False
        return notes
    if damaged:
        notes.append((logging.WARNING,
                      f'Falling back to the newest intact checkpoint: {path}'))
    notes.append((logging.INFO, f'Resuming from {path}'))
    cfg.resume, cfg.load_from = True, path
    return notes


def _summary(keys: Sequence[str], limit: int = 8) -> str:
    keys = list(keys)
    more = f' ... ({len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_checkpoint_strict(model: torch.nn.Module,
                           filename: str,
                           classes: Optional[Sequence[str]] = None,
                           config_name: str = 'the config') -> dict:
    """Load a Runner checkpoint into ``model`` for testing, strictly.

    Missing keys (other than BatchNorm's ``num_batches_tracked``),
    unexpected keys and shape mismatches are an error that names them,
    the classes the model is built for and the classes the checkpoint was
    trained on (``meta.dataset_meta``). Same class count but other names is
    a warning. Checkpoints of earlier layouts are upgraded as by the
    model's own ``load_state_dict`` (``upgrade_state_dict``).

    Args:
        model (nn.Module): The model (a wrapper is unwrapped).
        filename (str): The checkpoint.
        classes (Sequence[str], optional): The model's classes (the test
            dataset's, background first).
        config_name (str): How to name the config in messages.

    Returns:
        dict: The loaded checkpoint.
    """
    from mmengine.model import BaseTTAModel
    from mmengine.runner.checkpoint import _load_checkpoint
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f'{filename} holds no state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    state_dict = {
        re.sub(r'^module\.', '', k): v
        for k, v in state_dict.items()
    }
    upgrade = getattr(model, 'upgrade_state_dict', None)
    if upgrade is not None:
        state_dict = upgrade(state_dict)

    expected = model.state_dict()
    missing = [
        k for k in expected
        if k not in state_dict and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model '
        f'{tuple(expected[k].shape)}' for k, v in state_dict.items()
        if k in expected and hasattr(v, 'shape')
        and tuple(v.shape) != tuple(expected[k].shape)
    ]
    ckpt_classes = ((checkpoint.get('meta') or {}).get('dataset_meta')
                    or {}).get('classes')
    ckpt_desc = (f'{len(ckpt_classes)} classes {list(ckpt_classes)}'
                 if ckpt_classes else 'classes it does not record')
    model_desc = (f'{len(classes)} classes {list(classes)}'
                  if classes else 'classes the config does not list')
    if missing or unexpected or mismatched:
        lines = [
            f'Checkpoint {filename} does not fit the model of {config_name}:'
        ]
        if missing:
            lines.append(f'  {len(missing)} key(s) of the model are missing '
                         f'from the checkpoint: {_summary(missing)}')
        if unexpected:
            lines.append(f'  {len(unexpected)} key(s) of the checkpoint are '
                         f'not in the model: {_summary(unexpected)}')
        if mismatched:
            lines.append(f'  {len(mismatched)} shape mismatch(es): '
                         f'{_summary(mismatched, 4)}')
        lines.append(f'  The model is built for {model_desc}; the checkpoint '
                     f'was trained on {ckpt_desc}.')
        lines.append('  Test a checkpoint with the config (and data root) it '
                     'was trained with.')
        raise RuntimeError('\n'.join(lines))
    if classes and ckpt_classes and list(classes) != list(ckpt_classes):
        print_log(
            f'Checkpoint {filename} was trained on {ckpt_desc}; the test '
            f'data has {model_desc}: the class names differ.',
            logger='current',
            level=logging.WARNING)
    for key in expected:  # BatchNorm counters are not weights
        if key not in state_dict:
            state_dict[key] = expected[key]
    model.load_state_dict(state_dict, strict=True)
    return checkpoint


UNSAFE_PICKLE_HELP = (
    'load SRC with full unpickling (torch.load weights_only=False) if it '
    'holds Python objects besides tensors and the mmengine Runner state. '
    'Unpickling can run arbitrary code: use it only for files you trust')


def _refusal_reason(error: Exception) -> str:
    """The line of torch's weights-only error that names the object."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if 'GLOBAL' in line]
    return (named or lines or [type(error).__name__])[0]


def load_checkpoint_file(
    path: str,
    unsafe_pickle: bool = False,
    allowed_globals: Sequence[type] = ()) -> object:
    """Load a checkpoint file without running code from it, unless asked.

    Weights-only: tensors, the objects of an mmengine Runner checkpoint
    (registered at ``import mmseg_wsss``) and ``allowed_globals`` (plain
    containers a foreign format stores, e.g. DeiT's ``argparse.Namespace``).
    The model converters use it with their ``--unsafe-pickle`` flag.

    Args:
        path (str): The checkpoint file.
        unsafe_pickle (bool): Load with ``weights_only=False``, which can
            run arbitrary code from the file. Defaults to False.
        allowed_globals (Sequence[type]): Further classes to rebuild (torch
            >= 2.5; older torch needs ``unsafe_pickle`` for such files).

    Returns:
        object: The loaded object (a dict for any checkpoint).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        pickle.UnpicklingError: The file holds objects a weights-only load
            refuses; the message names the object and ``--unsafe-pickle``.
    """
    import contextlib
    import pickle
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if unsafe_pickle:
        return torch.load(path, map_location='cpu', weights_only=False)
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    allow = safe_globals(list(allowed_globals)) if (
        safe_globals and allowed_globals) else contextlib.nullcontext()
    try:
        with allow:
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'{path} cannot be loaded weights-only: it needs pickle for '
            'objects other than tensors and the mmengine Runner state '
            f'({_refusal_reason(e)}). Unpickling can run arbitrary code; if '
            'you trust the file, rerun with --unsafe-pickle.') from e


def build_test_runner(cfg: Config, checkpoint: str, config_name: str):
    """The Runner of a test-like tool, its model's weights loaded strictly.

    Sets up CPU distribution (gloo) when needed, builds the Runner from
    ``cfg`` (whose ``load_from`` the caller clears: the Runner would load
    non-strictly) and loads ``checkpoint`` with
    :func:`load_checkpoint_strict` against the test dataset's classes.

    Args:
        cfg (Config): The tool's config.
        checkpoint (str): The checkpoint file.
        config_name (str): The config path, named in errors.

    Returns:
        Runner: Ready for ``runner.test()``.
    """
    from mmengine.runner import Runner

    from mmseg_wsss.utils.config_utils import (dataset_classes,
                                               setup_cpu_distributed)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    load_checkpoint_strict(
        runner.model,
        checkpoint,
        classes=dataset_classes(cfg.test_dataloader.dataset),
        config_name=config_name)
    runner.logger.info(f'Loaded checkpoint {checkpoint} (strict)')
    return runner
