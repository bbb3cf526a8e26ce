# Copyright (c) OpenMMLab. All rights reserved.
"""Config adjustments shared by the tools (train, test, benchmarks)."""
import os
import os.path as osp
from typing import Iterator, List, Optional

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


def load_tool_config(args) -> Config:
    """The config of a tool invocation (``tools/train.py``, ``test.py``).

    Loads ``args.config``, records ``args.launcher``, merges
    ``args.cfg_options``, points every dataset at ``args.data_root`` (if
    given), makes ``num_classes`` follow the data's classes, and sets the
    work dir (CLI, then config, then ``./work_dirs/<config name>``).
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root is not None:
        set_data_root(cfg, args.data_root)
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
