# Copyright (c) OpenMMLab. All rights reserved.
"""Export a WSSS model's pseudo labels of a training split as PNG files.

The input of a second stage: a fully supervised model trained on these
labels. Each image of ``ImageSets/Segmentation/{split}.txt`` (of the
config's test dataset) gets the model's own multi-scale (+ flip)
``predict()``, with the image-level labels selecting the classes
(``test_cfg.cls_source='gt'``, the papers' protocol; as
``tools/test.py --pseudo-labels``), optionally refined by the config's
dense CRF (``--crf``), and is written as ``DIR/<image id>.png``: a palette
PNG of class ids (the dataset's palette, 255 = ignore), the image's size.

Example::

    python tools/make_pseudo_labels.py \\
        configs/toco/toco_toy.py work_dirs/toco_toy/iter_3000.pth \\
        --out data/toy/pseudo_toco --crf
    # distributed, one process per GPU
    python -m torch.distributed.run --nproc_per_node=2 \\
        tools/make_pseudo_labels.py CONFIG CKPT --out DIR --launcher pytorch

A PNG is written under a temporary name in DIR and renamed into place, so a
killed run leaves no half-written label; run the same command again and it
exports only the images without a PNG (and removes stale temporary files),
ending with the folder an uninterrupted run writes. The inference never
reads the ground-truth masks; afterwards, if the split has masks, rank 0
scores every PNG of the split in DIR against them (mIoU, per-class and
overall precision and recall), prints the figures and writes them to
``DIR.json``, beside DIR.
"""
import argparse
import io
import json
import math
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

import mmseg_wsss  # noqa: E402,F401  (applies the stack fixes, registers)
import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import barrier, broadcast_object_list  # noqa: E402
from mmengine.dist import get_dist_info, is_main_process  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402
from mmseg.registry import DATA_SAMPLERS  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import Sampler  # noqa: E402

from mmseg_wsss.engine.runner import build_test_runner  # noqa: E402
from mmseg_wsss.evaluation.label_map_stats import (  # noqa: E402
    class_figures, confusion_matrix, read_label_map)
from mmseg_wsss.registry import HOOKS, MODELS  # noqa: E402
from mmseg_wsss.utils import load_tool_config  # noqa: E402
from mmseg_wsss.utils import teardown_distributed  # noqa: E402
from mmseg_wsss.utils.config_utils import (  # noqa: E402
    enable_crf, use_training_split)
from mmseg_wsss_light.fileio import (  # noqa: E402
    write_bytes_atomic, write_text_atomic)
from mmseg_wsss_light.voc_layout import default_palette  # noqa: E402

# A PNG before its rename: ``.<id>.png.<pid>.<random>.tmp`` (as the
# checkpoints' ``.*.pth.*.tmp``).
TMP_RE = re.compile(r'^\..+\.png\.\d+\.[0-9a-f]+\.tmp$')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export the pseudo labels of a training split as '
        'palette PNGs, DIR/<image id>.png, for a second stage.',
        epilog='Resumable: run the same command again after a kill and only '
        'the images without a PNG in DIR are exported. At the end, when the '
        'split has ground-truth masks, the labels of the whole split in DIR '
        'are scored against them (the inference never reads a mask): mIoU '
        '(as tools/test.py), per-class and overall precision and recall, '
        'and the share of annotated pixels labelled ignore (255), in %; '
        'printed and written to DIR.json, beside DIR (for --out '
        'work_dirs/x/pseudo: work_dirs/x/pseudo.json).')
    parser.add_argument('config', help='config of the WSSS model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        required=True,
        metavar='DIR',
        help='output folder of the PNGs (one per image; the quality '
        'figures go to DIR.json beside it)')
    parser.add_argument(
        '--split',
        default='train',
        metavar='SPLIT',
        help='the split to label: ImageSets/Segmentation/SPLIT.txt of the '
        "config's test dataset (default: train)")
    parser.add_argument(
        '--crf',
        action='store_true',
        help="refine with the config's dense CRF (model.test_cfg.crf) in "
        'worker processes overlapping inference (WSSSTestLoop)')
    parser.add_argument(
        '--crf-workers',
        type=int,
        metavar='N',
        help='CRF worker processes, with --crf (default: the config\'s, '
        'else 2; 0 runs the CRF in the main process)')
    parser.add_argument(
        '--from-cams',
        action='store_true',
        help='export the thresholded CAMs (test_cfg.output=cam of ToCo / '
        'DuPL; with --crf the CAM-label CRF: preset toco_cam, prob_mode '
        'normalize) instead of the segmentation head; a CAM baseline '
        'predicts CAMs anyway. DuPL: model.test_cfg.branch (1, 2 or mean, '
        'the default) picks the network')
    parser.add_argument(
        '--data-root',
        help='use this dataset folder; for a VOC-layout folder with '
        'classes.txt the class count follows it')
    parser.add_argument(
        '--work-dir', help='where the run logs go (default: as tools/test.py)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, xxx=yyy (as tools/test.py)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.crf_workers is not None and not args.crf:
        parser.error('--crf-workers needs --crf')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# Files -----------------------------------------------------------------
def image_id(img_path: str) -> str:
    """``<image id>`` of an image file (its name without extension)."""
    return osp.splitext(osp.basename(img_path))[0]


def full_palette(palette: Optional[Sequence[Sequence[int]]]) -> List[int]:
    """A flat 256-entry PNG palette: the dataset's colours, then the VOC
    colour map (255 = ignore is drawn as in VOC)."""
    colours = [list(c) for c in (palette or [])]
    colours += default_palette(256)[len(colours):]
    return [int(v) for rgb in colours[:256] for v in rgb]


def save_label_png(path: str, label: np.ndarray, palette: List[int]) -> None:
    """Write an (H, W) class-id map as a palette PNG, atomically.

    The PNG is encoded in memory, written to ``.<name>.<pid>.<random>.tmp``
    beside ``path`` and renamed over it: a reader (or a restart) never sees
    a half-written label under the final name.
    """
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f'{path}: class ids {int(label.min())}..'
                         f'{int(label.max())} do not fit a palette PNG')
    h, w = label.shape
    png = Image.frombytes('P', (w, h),
                          np.ascontiguousarray(label, dtype=np.uint8))
    png.putpalette(palette)
    buf = io.BytesIO()
    png.save(buf, format='PNG')
    # No fsync per label: thousands of small files; a crash loses at most
    # the files not yet renamed, which a restart writes again.
    write_bytes_atomic(path, buf.getvalue(), fsync=False)


def pending_indices(dataset, out_dir: str) -> List[int]:
    """Dataset indices of the images without a PNG in ``out_dir``.

    Removes stale temporary files (of a killed run) first and logs what is
    done and what is left.
    """
    os.makedirs(out_dir, exist_ok=True)
    done, stale = set(), 0
    for entry in os.listdir(out_dir):
        if TMP_RE.match(entry):
            os.remove(osp.join(out_dir, entry))
            stale += 1
        elif entry.endswith('.png'):
            done.add(entry[:-len('.png')])
    todo = [
        i for i in range(len(dataset))
        if image_id(dataset.get_data_info(i)['img_path']) not in done
    ]
    msg = (f'{len(dataset) - len(todo)} of {len(dataset)} images already '
           f'have a PNG in {out_dir}; exporting {len(todo)}')
    if stale:
        msg += f' (removed {stale} stale temporary file(s))'
    print_log(msg + '.', logger='current')
    return todo


# force: a second import of this script (tests) registers it again.
@DATA_SAMPLERS.register_module(force=True)
class SkipExportedSampler(Sampler):
    """The test sampler of the images not exported yet, in dataset order.

    Rank 0 lists ``out_dir`` (:func:`pending_indices`) before any rank
    writes and broadcasts the result, so every rank shards the same list:
    like mmengine's ``DefaultSampler(shuffle=False)``, it is padded with
    repeats to a multiple of the world size, and rank r takes every
    ``world_size``-th index from r. The skipping happens here, before
    inference: an exported image is never loaded.

    Args:
        dataset (Dataset): The test dataset.
        out_dir (str): The folder of the PNGs.
        seed (int, optional): Unused (the Runner passes it).
    """

    def __init__(self, dataset, out_dir: str, seed=None) -> None:
        self.rank, self.world_size = get_dist_info()
        todo = [pending_indices(dataset, out_dir) if self.rank == 0 else None]
        if self.world_size > 1:
            broadcast_object_list(todo)
        self.indices: List[int] = todo[0]
        self.num_samples = math.ceil(len(self.indices) / self.world_size)

    def __iter__(self):
        total = self.num_samples * self.world_size
        repeats = math.ceil(total / max(len(self.indices), 1))
        padded = (self.indices * repeats)[:total]
        return iter(padded[self.rank:total:self.world_size])

    def __len__(self) -> int:
        return self.num_samples


@HOOKS.register_module(force=True)
class PseudoLabelWriterHook(Hook):
    """Write each test prediction as ``out_dir/<image id>.png``.

    After each test iteration, i.e. after the CRF of
    :class:`WSSSTestLoop`, every rank writes its own images
    (:func:`save_label_png`); rank 0 shows a progress bar (rate, ETA) over
    the images of all ranks.

    Args:
        out_dir (str): The folder of the PNGs.
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.palette: List[int] = []
        self.bar: Optional[ProgressBar] = None
        self.left = 0

    def before_test(self, runner) -> None:
        loader = runner.test_loop.dataloader
        self.palette = full_palette(loader.dataset.metainfo.get('palette'))
        self.left = len(getattr(loader.sampler, 'indices', loader.dataset))
        if is_main_process() and self.left:
            self.bar = ProgressBar(self.left)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch=None,
                        outputs=None) -> None:
        for sample in outputs:
            label = sample.pred_sem_seg.data[0].cpu().numpy()
            ori_shape = tuple(sample.metainfo.get('ori_shape', label.shape))
            if label.shape != ori_shape[:2]:  # mmseg resizes to ori_shape
                raise RuntimeError(f'prediction of {sample.img_path} is '
                                   f'{label.shape}, the image {ori_shape}')
            path = osp.join(self.out_dir, image_id(sample.img_path) + '.png')
            save_label_png(path, label, self.palette)
        if self.bar is not None:
            # Ranks run in step: rank 0's batch stands for one of each.
            step = min(len(outputs) * get_dist_info()[1], self.left)
            if step:
                self.bar.update(step)
                self.left -= step

    def after_test(self, runner) -> None:
        if self.bar is not None:
            print(flush=True)  # end the bar's line
            self.bar = None


# Config ----------------------------------------------------------------
def use_cam_output(cfg: Config) -> None:
    """``--from-cams``: make the model predict its thresholded CAMs.

    ToCo-family segmentors (``test_cfg.output``) switch to ``'cam'``, and
    their CRF (if any) to the CAM-label CRF of ToCo (preset ``toco_cam`` on
    normalised scores: a softmax of CAM scores in [0, 1] is near uniform);
    a :class:`CAMSegmentor` predicts CAMs already.

    Raises:
        ValueError: The segmentor has no CAM output.
    """
    from mmseg_wsss.models.segmentors import CAMSegmentor
    model_type = cfg.model.type
    cls = MODELS.get(model_type) if isinstance(model_type, str) \
        else model_type
    if isinstance(cls, type) and issubclass(cls, CAMSegmentor):
        return
    if 'output' not in getattr(cls, 'DEFAULT_TEST_CFG', {}):
        name = getattr(cls, '__name__', model_type)
        raise ValueError(
            f'--from-cams: {name} has no CAM output (test_cfg.output '
            "'seg'/'cam', as ToCoSegmentor and DuPLSegmentor have); export "
            'its predictions without --from-cams.')
    test_cfg = dict(cfg.model.get('test_cfg') or {}, output='cam')
    if test_cfg.get('crf'):
        test_cfg['crf'] = dict(
            test_cfg['crf'], preset='toco_cam', prob_mode='normalize')
    cfg.model.test_cfg = test_cfg


def split_file(cfg: Config) -> str:
    """Path of the test dataset's split list (``ann_file``)."""
    dataset = cfg.test_dataloader.dataset
    ann_file = dataset.ann_file
    if osp.isabs(ann_file):
        return ann_file
    return osp.join(dataset.get('data_root') or '', ann_file)


def prepare_config(cfg: Config, args) -> None:
    """Turn a test config into the export of ``args.split`` (in place).

    The split with ``cls_source='gt'`` (:func:`use_training_split`), no
    ``LoadAnnotations`` in the pipeline (the inference never reads a mask),
    ``--from-cams`` / ``--crf``, no metric, the skipping sampler and the
    writer hook.

    Raises:
        FileNotFoundError: The split list does not exist.
        ValueError: ``--crf`` without ``model.test_cfg.crf``, or
            ``--from-cams`` for a segmentor without CAM output.
    """
    use_training_split(cfg, args.split)
    path = split_file(cfg)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'split file not found: {path} (--split {args.split}; the '
            'split lists are ImageSets/Segmentation/<split>.txt of the data '
            'root)')
    dataset = cfg.test_dataloader.dataset
    dataset.pipeline = [
        t for t in dataset.pipeline
        if str(t.get('type', '')).split('.')[-1] != 'LoadAnnotations'
    ]
    if args.from_cams:
        use_cam_output(cfg)
    if args.crf:
        enable_crf(cfg, args.crf_workers)
    cfg.test_evaluator = []  # nothing to score during the export
    cfg.test_dataloader.sampler = dict(
        type='SkipExportedSampler', out_dir=args.out)
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='PseudoLabelWriterHook', out_dir=args.out)
    ]


# Quality ---------------------------------------------------------------
def summarize(hist: np.ndarray, classes: Sequence[str]) -> Dict:
    """Quality figures (percent) of a :func:`confusion_matrix` sum.

    IoU as mmseg's ``IoUMetric`` (a pseudo-ignored pixel is a miss of its
    class; mIoU over the classes in the masks or the labels); precision of
    a class over the pixels labelled with it, recall over its annotated
    pixels (ignored ones are not recalled); overall: the same over all
    pixels; ``ignored``: share of the annotated pixels labelled 255.
    """
    C = len(classes)
    figs = class_figures(hist)
    tp, total = float(np.diag(hist[:, :C]).sum()), float(hist.sum())
    labelled = float(hist[:, :C].sum())

    def num(value) -> Optional[float]:  # JSON has no NaN
        return None if np.isnan(value) else round(float(value), 4)

    def pct(x: float, n: float) -> float:
        return 100. * x / n if n else float('nan')

    return dict(
        mIoU=num(np.nanmean(figs['IoU']))
        if not np.isnan(figs['IoU']).all() else None,
        precision=num(pct(tp, labelled)),
        recall=num(pct(tp, total)),
        ignored=num(pct(float(hist[:, C].sum()), total)),
        per_class={
            name: {
                k: num(figs[k][c])
                for k in ('IoU', 'precision', 'recall')
            }
            for c, name in enumerate(classes)
        })


def report_quality(out_dir: str, items: Sequence[Tuple[str, Optional[str]]],
                   classes: Sequence[str], split: str) -> Optional[Dict]:
    """Score the split's PNGs in ``out_dir`` against their masks.

    Prints the figures and writes them to ``out_dir.json``. When a mask is
    missing (the split has none, or not all), it says so and reads none.

    Args:
        out_dir (str): The folder of the PNGs.
        items (Sequence[tuple]): ``(image id, mask path or None)`` of every
            image of the split.
        classes (Sequence[str]): The class names, background first.
        split (str): The split's name (for the messages).

    Returns:
        dict | None: The figures, None if not scored.
    """
    missing = [
        m or f'(no mask path for {n})' for n, m in items
        if not m or not osp.isfile(m)
    ]
    if missing:
        print(
            f'[make_pseudo_labels] {len(missing)} of {len(items)} '
            f'images of {split} have no ground-truth mask (e.g. '
            f'{missing[0]}): the pseudo-label quality is not computed.',
            flush=True)
        return None
    hist = np.zeros((len(classes), len(classes) + 1), np.int64)
    scored = 0
    for name, mask in items:
        path = osp.join(out_dir, name + '.png')
        if not osp.isfile(path):  # not exported (a failed write?)
            print(
                f'[make_pseudo_labels] no pseudo label {path}: not '
                'scored',
                flush=True)
            continue
        try:
            hist += confusion_matrix(
                read_label_map(path), read_label_map(mask), len(classes))
        except ValueError as e:
            raise ValueError(f'{path} (mask {mask}): {e}') from None
        scored += 1
    stats = dict(split=split, images=scored, **summarize(hist, classes))
    from prettytable import PrettyTable
    table = PrettyTable(['Class', 'IoU', 'Precision', 'Recall'])
    for name, row in stats['per_class'].items():
        table.add_row([name] + [
            'n/a' if row[k] is None else f'{row[k]:.2f}'
            for k in ('IoU', 'precision', 'recall')
        ])
    json_path = osp.normpath(out_dir) + '.json'
    write_text_atomic(json_path, json.dumps(stats, indent=1))
    fmt = ('n/a' if stats[k] is None else f'{stats[k]:.2f}'
           for k in ('mIoU', 'precision', 'recall', 'ignored'))
    print(
        f'{table.get_string()}\n[make_pseudo_labels] {scored} PNGs of '
        f'{split} vs. the masks: mIoU {next(fmt)}, precision {next(fmt)}, '
        f'recall {next(fmt)}, ignored {next(fmt)} % (saved to '
        f'{json_path})',
        flush=True)
    return stats


def main(argv=None) -> int:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_tool_config(args)
    cfg.load_from = None  # loaded strictly below, as tools/test.py
    prepare_config(cfg, args)

    runner = build_test_runner(cfg, args.checkpoint, args.config)
    runner.test()
    barrier()  # every rank's PNGs are in place before rank 0 scores them

    if is_main_process():
        dataset = runner.test_loop.dataloader.dataset
        infos = (dataset.get_data_info(i) for i in range(len(dataset)))
        items = [(image_id(d['img_path']), d.get('seg_map_path'))
                 for d in infos]
        print(
            f'[make_pseudo_labels] pseudo labels of {len(items)} '
            f'{args.split} images in {args.out}',
            flush=True)
        report_quality(args.out, items, dataset.metainfo['classes'],
                       args.split)
    teardown_distributed()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
