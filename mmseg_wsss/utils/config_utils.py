# Copyright (c) OpenMMLab. All rights reserved.
"""Config adjustments shared by the tools (train, test, benchmarks)."""
import logging
import os
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def iter_dataset_cfgs(cfg: Config) -> Iterator[dict]:
    """Every dataset config of the dataloaders, wrappers included."""

    def walk(ds):
        if not isinstance(ds, dict):
            return
        yield ds
        if isinstance(ds.get('dataset'), dict):  # RepeatDataset & co.
            yield from walk(ds['dataset'])
        for sub in ds.get('datasets', []) or []:  # ConcatDataset
            yield from walk(sub)

    for key in DATALOADERS:
        loader = cfg.get(key)
        if isinstance(loader, dict):
            yield from walk(loader.get('dataset'))


def set_data_root(cfg: Config, data_root: str) -> None:
    """Point every dataset of the config at ``data_root``."""
    cfg.data_root = data_root
    for ds in iter_dataset_cfgs(cfg):
        if 'data_root' in ds:
            ds['data_root'] = data_root


def enable_crf(cfg: Config, workers: Optional[int] = None) -> None:
    """Switch on the model's dense CRF (``model.test_cfg.crf``).

    Sets ``enable=True`` (and ``workers``) in ``model.test_cfg.crf`` and
    tests with :class:`WSSSTestLoop`, which runs the CRF in worker processes
    while the model goes on; the test evaluator stays as it is. Used by
    ``tools/test.py --crf`` and ``tools/make_pseudo_labels.py --crf``.

    Args:
        cfg (Config): The tool's config, changed in place.
        workers (int, optional): CRF worker processes (the config's, or
            the post-processor's default 2, if None).

    Raises:
        ValueError: The config has no ``model.test_cfg.crf``.
    """
    test_cfg = cfg.model.get('test_cfg') or {}
    crf = test_cfg.get('crf')
    if not crf:
        raise ValueError('--crf: the config has no model.test_cfg.crf, e.g. '
                         "dict(preset='toco', prob_mode='softmax')")
    crf = dict(crf, enable=True)
    if workers is not None:
        crf['workers'] = workers
    test_cfg = dict(test_cfg, crf=crf)
    cfg.model.test_cfg = test_cfg
    cfg.test_cfg = dict(cfg.get('test_cfg') or {}, type='WSSSTestLoop')


def use_training_split(cfg: Config, split: str) -> None:
    """Test on ``split`` with ground-truth image labels selecting the CAMs.

    The test dataset reads ``ImageSets/Segmentation/{split}.txt`` (all of
    it: ``indices`` is dropped) and ``model.test_cfg.cls_source='gt'``: the
    image-level labels select the classes, the papers' protocol for pseudo
    labels. Used by ``tools/test.py --pseudo-labels`` and
    ``tools/make_pseudo_labels.py``.

    Args:
        cfg (Config): The tool's config, changed in place.
        split (str): The split's name, e.g. 'train'.
    """
    dataset = cfg.test_dataloader.dataset
    dataset.ann_file = f'ImageSets/Segmentation/{split}.txt'
    dataset.pop('indices', None)
    cfg.model.test_cfg = dict(cfg.model.get('test_cfg') or {})
    cfg.model.test_cfg['cls_source'] = 'gt'


def drop_pretrained(cfg) -> None:
    """Drop every checkpoint a model config would load (in place).

    Each ``init_cfg`` of type 'Pretrained' and each ``pretrained`` entry
    becomes None, at any depth: the model builds with its own random init
    (tests, benchmarks, machines without the weights).
    """
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        if 'pretrained' in cfg:
            cfg['pretrained'] = None
        for value in cfg.values():
            drop_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_pretrained(value)


def num_extra_views(cfg: Config) -> int:
    """Extra views of each image the training pipeline packs (its
    ``AddView`` steps; ToCo's CTC needs 2, FSR 1), for tools and tests that
    make batches without the pipeline."""
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    pipeline = dataset.get('pipeline') or []
    return sum(t.get('type') == 'AddView' for t in pipeline)


def dataset_classes(ds_cfg: dict) -> Optional[List[str]]:
    """Class names a dataset config resolves to (without building it)."""
    from mmseg.registry import DATASETS

    from mmseg_wsss.datasets.cls_labels import read_classes_file
    metainfo = ds_cfg.get('metainfo') or {}
    if metainfo.get('classes'):
        return list(metainfo['classes'])
    ds_type = ds_cfg.get('type')
    cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    if cls is None:
        return None
    if 'classes_file' in getattr(cls.__init__, '__code__').co_varnames:
        classes_file = ds_cfg.get('classes_file', 'classes.txt')
        path = classes_file if osp.isabs(classes_file) else osp.join(
            ds_cfg.get('data_root', ''), classes_file)
        return read_classes_file(path)
    classes = getattr(cls, 'METAINFO', {}).get('classes')
    return list(classes) if classes else None


def _set_num_classes(node, num_classes: int) -> List[str]:
    changed = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'num_classes' and isinstance(value, int):
                if value != num_classes:
                    node[key] = num_classes
                    changed.append(f'{value}->{num_classes}')
            else:
                changed += _set_num_classes(value, num_classes)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed += _set_num_classes(value, num_classes)
    return changed


def sync_num_classes(cfg: Config) -> Optional[int]:
    """Make the model's per-class sizes follow the dataset's classes.

    The class list of the first dataset that defines one (for a
    :class:`WSSSCustomDataset`, its ``classes.txt``) sets every
    ``num_classes`` in ``cfg.model``; the change is logged. Per-class lists
    in ``cfg.model`` must then have one entry per (foreground) class.

    Returns:
        int | None: The number of classes (with background), if known.
    """
    classes = None
    for ds in iter_dataset_cfgs(cfg):
        classes = dataset_classes(ds)
        if classes:
            break
    if not classes:
        return None
    changed = _set_num_classes(cfg.model, len(classes))
    if changed:
        print_log(
            f'The dataset has {len(classes)} classes (background first: '
            f'{classes[:4]}...): set num_classes in the model config '
            f'({", ".join(sorted(set(changed)))}).',
            logger='current')
    return len(classes)


def _warn(msg: str) -> None:
    print_log(msg, logger='current', level=logging.WARNING)


def _pop_data_root_option(options: dict,
                          cli_data_root: Optional[str]) -> Optional[str]:
    """The data root of ``--data-root`` or ``--cfg-options data_root=``.

    A config's datasets copy ``data_root`` when the file is parsed, so the
    option is taken out of ``options`` (in place) and applied like
    ``--data-root``. ``--data-root`` wins if both are given and differ.
    """
    if 'data_root' not in options:
        return cli_data_root
    option = options.pop('data_root')
    if cli_data_root is None:
        print_log(
            f'--cfg-options data_root={option}: every dataset of the config '
            'uses it (as with --data-root).',
            logger='current')
        return option
    if cli_data_root != option:
        _warn(f'--data-root {cli_data_root} and --cfg-options data_root='
              f'{option} differ: using --data-root {cli_data_root}.')
    return cli_data_root


def _pop_max_iters_option(cfg: Config, options: dict) -> None:
    """Apply a top-level ``max_iters=N`` option to ``train_cfg.max_iters``.

    Like ``data_root``, the config variable ``max_iters`` was copied into
    ``train_cfg`` when the file was parsed; set alone it would change
    nothing. ``train_cfg.max_iters`` wins if both are given and differ.
    """
    if 'max_iters' not in options or not isinstance(
            cfg.get('train_cfg'), dict) or 'max_iters' not in cfg.train_cfg:
        return
    value = options['max_iters']
    explicit = options.get('train_cfg.max_iters')
    if explicit is None:
        options['train_cfg.max_iters'] = value
        print_log(
            f'--cfg-options max_iters={value}: set train_cfg.max_iters='
            f'{value} (the config variable alone has no effect).',
            logger='current')
    elif explicit != value:
        _warn(f'--cfg-options max_iters={value} and train_cfg.max_iters='
              f'{explicit} differ: using train_cfg.max_iters={explicit}.')


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_iteration_key(key) -> bool:
    return (isinstance(key, str) and key.endswith(('_iter', '_iters'))
            and not key.startswith('num_'))


def _iteration_settings(node, prefix: str) -> List[Tuple[str, int]]:
    """``(dotted key, value)`` of the iteration-valued entries of ``node``.

    Keys ending in ``_iter`` / ``_iters`` (``seg_start_iter``,
    ``dynamic_thr.max_iters``, ``warmup_iters`` ...) with an int value;
    ``num_iter(s)`` (refinement steps of PAR / PAMR) are not iterations of
    training.
    """
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f'{prefix}.{key}'
            if isinstance(value, dict):
                found += _iteration_settings(value, path)
            elif _is_iteration_key(key) and _is_int(value):
                found.append((path, value))
    return found


def _scheduler_phases(cfg: Config) -> List[dict]:
    schedulers = cfg.get('param_scheduler')
    if isinstance(schedulers, dict):
        return [schedulers]
    return [p for p in schedulers or [] if isinstance(p, dict)]


def follow_max_iters(cfg: Config, old: int, new: int,
                     options: Dict[str, object]) -> None:
    """Make what ends with the schedule follow a new ``max_iters``.

    Called when ``--cfg-options`` changed ``train_cfg.max_iters`` from
    ``old`` to ``new``. Unless the options set ``param_scheduler``
    themselves, every iteration-based LR phase that ended at ``old`` ends at
    ``new``; a phase that starts at or after ``new`` (it keeps its end, as
    mmengine refuses an end before the begin, and never runs) or still ends
    after ``new`` is warned about. Iteration settings of
    ``model.train_cfg`` (method gates) are kept and listed in one warning; a
    checkpoint or validation interval beyond ``new`` is warned about with
    what mmengine will do.

    Args:
        cfg (Config): The merged config, changed in place.
        old (int): ``train_cfg.max_iters`` of the config file.
        new (int): ``train_cfg.max_iters`` after the options.
        options (dict): The ``--cfg-options`` (dotted keys).
    """
    if any(k == 'param_scheduler' or k.startswith('param_scheduler.')
           for k in options):
        print_log(
            f'train_cfg.max_iters {old} -> {new}; param_scheduler is set in '
            '--cfg-options, so its phases are kept as given.',
            logger='current')
    else:
        moved, problems = [], []
        for index, phase in enumerate(_scheduler_phases(cfg)):
            if phase.get('by_epoch', True):
                continue  # in epochs, not iterations
            name = f'param_scheduler[{index}] ({phase.get("type")})'
            begin, end = phase.get('begin', 0), phase.get('end')
            if begin >= new:
                # Its end stays: mmengine refuses end <= begin.
                problems.append(f'{name} begins at {begin}, at or after '
                                f'the new end {new}: it never runs')
            elif end == old:
                phase['end'] = new
                moved.append(name)
            elif _is_int(end) and end > new:
                problems.append(f'{name} ends at {end}, after the new end '
                                f'{new}: it is cut short')
        if moved:
            print_log(
                f'train_cfg.max_iters {old} -> {new}: the LR schedule '
                f'phases that ended at {old} now end at {new}: '
                f'{", ".join(moved)}.',
                logger='current')
        if problems:
            _warn(f'train_cfg.max_iters {old} -> {new}: ' +
                  '; '.join(problems) + '. Set param_scheduler in '
                  '--cfg-options if this is not intended.')

    model_cfg = cfg.get('model')
    train_cfg = model_cfg.get('train_cfg') if isinstance(model_cfg,
                                                         dict) else None
    kept = [(k, v)
            for k, v in _iteration_settings(train_cfg, 'model.train_cfg')
            if k not in options]
    if kept:
        listed = ', '.join(f'{k}={v}{" (never reached)" if v >= new else ""}'
                           for k, v in kept)
        _warn(f'train_cfg.max_iters {old} -> {new}, but these iteration '
              f'settings are kept as configured (method gates do not move '
              f'with max_iters): {listed}. Set them in --cfg-options if they '
              'should follow.')

    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if isinstance(checkpoint, dict) and not checkpoint.get('by_epoch', True):
        interval = checkpoint.get('interval', -1)
        if isinstance(interval, int) and interval > new:
            if checkpoint.get('save_last', True):
                then = (f'CheckpointHook saves one, at the last iteration '
                        f'{new} (save_last=True)')
            else:
                then = 'none is saved at all (save_last=False)'
            _warn(f'default_hooks.checkpoint.interval={interval} exceeds '
                  f'train_cfg.max_iters={new}: no checkpoint before the '
                  f'end; {then}.')
    val_interval = cfg.train_cfg.get('val_interval')
    if isinstance(val_interval, int) and val_interval > new:
        val_begin = cfg.train_cfg.get('val_begin', 1)
        if val_begin > new:
            then = (f'none at all (train_cfg.val_begin={val_begin} is after '
                    'the end)')
        else:
            then = (f'IterBasedTrainLoop validates once, at the last '
                    f'iteration {new}')
        _warn(f'train_cfg.val_interval={val_interval} exceeds '
              f'train_cfg.max_iters={new}: no validation before the end; '
              f'{then}.')


def _max_iters(cfg: Config) -> Optional[int]:
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict):
        value = train_cfg.get('max_iters')
        if _is_int(value):
            return value
    return None


def load_tool_config(args) -> Config:
    """The config of a tool invocation (``tools/train.py``, ``test.py``).

    Loads ``args.config``, records ``args.launcher``, merges
    ``args.cfg_options``, points every dataset at ``args.data_root`` (if
    given), makes ``num_classes`` follow the data's classes, and sets the
    work dir (CLI, then config, then ``./work_dirs/<config name>``).

    Options that the parsed config would otherwise ignore are applied where
    they belong: ``data_root=DIR`` works as ``--data-root DIR`` (which wins
    if both differ), a top-level ``max_iters=N`` sets
    ``train_cfg.max_iters``, and a changed ``train_cfg.max_iters`` moves the
    LR schedule's end with it (:func:`follow_max_iters`). Each is logged.

    Args:
        args (argparse.Namespace): With ``config``, ``launcher``,
            ``cfg_options`` (dict or None), ``data_root`` and ``work_dir``.

    Returns:
        Config: The config to build the Runner from.
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    # A copy: the caller's args stay as parsed.
    options = dict(args.cfg_options or {})
    cli_data_root = getattr(args, 'data_root', None)
    data_root = _pop_data_root_option(options, cli_data_root)
    old_max_iters = _max_iters(cfg)
    if options:
        _pop_max_iters_option(cfg, options)
        cfg.merge_from_dict(options)
        new_max_iters = _max_iters(cfg)
        if None not in (old_max_iters,
                        new_max_iters) and new_max_iters != old_max_iters:
            follow_max_iters(cfg, old_max_iters, new_max_iters, options)
    if data_root is not None:
        set_data_root(cfg, data_root)
    sync_num_classes(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def setup_cpu_distributed(cfg: Config) -> None:
    """Make ``--launcher pytorch`` work on machines without a GPU.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and the Runner
    wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, both of which
    fail without CUDA. Initialising a gloo process group first (the Runner
    then skips ``init_dist``) and wrapping without device ids works.
    """
    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        if cfg.launcher == 'slurm':
            raise RuntimeError('CPU-only training supports --launcher '
                               'pytorch (tools/dist_train.sh).')
        dist.init_process_group(backend='gloo')
    # print, not print_log: mmengine's logger shows INFO on rank 0 only, and
    # every rank should say how it runs.
    print(
        f'No GPU: distributed CPU training with gloo, rank '
        f'{dist.get_rank()} of {dist.get_world_size()} '
        f'(LOCAL_RANK {os.environ.get("LOCAL_RANK")}).',
        flush=True)


def teardown_distributed() -> None:
    """Destroy the default process group, if any, before the process exits.

    Left to interpreter shutdown, a gloo process group's threads can outlive
    their owner and abort a rank ("terminate called without an active
    exception", exit code -6) after training has finished, which fails the
    whole ``torch.distributed.run`` job. All ranks wait for each other
    first, so no rank tears down while another still communicates.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
