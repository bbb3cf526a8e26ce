# Copyright (c) OpenMMLab. All rights reserved.
"""Score a checkpoint's training pseudo labels against the masks.

WSSS methods live or die by their pseudo labels. This tool takes them from
the model's own ``pseudo_labels()`` (the labels its segmentation loss uses:
ToCo's PAR-refined CAM labels with their ignore band, DuPL's dynamic
threshold and noise filtering, 1Stage's PAMR labels, the CAM baseline's
thresholded CAM), at the checkpoint's iteration (or ``--iter``), on whole
images of a split without augmentation, and compares them with the
ground-truth masks the training never read. A method whose segmentation
loss is still off at that iteration gives labels that are all ignore.
(``tools/test.py --pseudo-labels`` scores the papers' CAM pseudo labels: one
background threshold, no ignore band. This tool scores the refined labels the
segmentation head learns from, ignore band included.)

Example::

    python tools/analysis_tools/pseudo_label_quality.py \\
        configs/toco/toco_toy.py work_dirs/toco_toy/iter_3000.pth \\
        --data-root data/toy --split train --num-images 300

Prints and (``--out``) writes: the pseudo labels' mIoU on their labelled
pixels, the share of pixels labelled foreground, background and ignore (and
the masks' foreground share), the share of object pixels labelled as their
class, as background and ignored, and the precision of the labelled pixels;
and the same per class (IoU, precision, shares labelled as the class, as
background, ignored).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

import mmseg_wsss  # noqa: E402,F401
import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from mmseg_wsss.evaluation.label_map_stats import \
    confusion_matrix  # noqa: E402

IGNORE = 255


def accumulate(hist: torch.Tensor,
               counts: torch.Tensor,
               label: torch.Tensor,
               gt: torch.Tensor,
               ignored_by_class: Optional[torch.Tensor] = None) -> None:
    """Add one image to the statistics (in place).

    Args:
        hist (Tensor): (C, C) int64 confusion matrix, rows ground truth,
            columns pseudo label, over pixels labelled in both.
        counts (Tensor): (4,) int64: valid ground-truth pixels, their
            foreground pixels, pseudo-ignored ones, pseudo-ignored object
            pixels.
        label (Tensor): (H, W) pseudo label, ``IGNORE`` = ignored.
        gt (Tensor): (H, W) mask, ``IGNORE`` = not annotated.
        ignored_by_class (Tensor, optional): (C,) int64: pseudo-ignored
            pixels per ground-truth class, for :func:`summarize_per_class`.
    """
    # One home for the pixel counting: label_map_stats' (C, C + 1)
    # confusion matrix, whose last column holds the ignored pixels.
    C = hist.shape[0]
    full = torch.from_numpy(
        confusion_matrix(label.cpu().numpy(),
                         gt.cpu().numpy(), C, IGNORE)).to(hist)
    counts += torch.stack(
        [full.sum(), full[1:].sum(), full[:, C].sum(),
         full[1:, C].sum()]).to(counts)
    if ignored_by_class is not None:
        ignored_by_class += full[:, C].to(ignored_by_class)
    hist += full[:, :C]


def summarize(hist: torch.Tensor, counts: torch.Tensor) -> Dict[str, float]:
    """Percentages from :func:`accumulate`'s statistics.

    Returns:
        dict: ``mIoU`` over classes present in the masks or the labels, on
        labelled pixels; ``fg``, ``bg``, ``ignore``: shares of all pixels
        labelled so; ``gt_fg``: the masks' foreground share; ``obj_as_class``,
        ``obj_as_bg``, ``obj_ignored``: shares of object pixels;
        ``precision``: correct share of the labelled pixels.
    """
    hist, counts = hist.double(), counts.double()
    total, gt_fg, ign, obj_ign = counts.tolist()
    diag = hist.diag()
    union = hist.sum(0) + hist.sum(1) - diag
    present = union > 0

    def pct(x, n) -> float:
        return 100. * float(x) / float(n) if n else float('nan')

    return dict(
        mIoU=100. * float((diag[present] / union[present]).mean())
        if present.any() else float('nan'),
        fg=pct(hist[:, 1:].sum(), total),
        bg=pct(hist[:, 0].sum(), total),
        ignore=pct(ign, total),
        gt_fg=pct(gt_fg, total),
        obj_as_class=pct(diag[1:].sum(), gt_fg),
        obj_as_bg=pct(hist[1:, 0].sum(), gt_fg),
        obj_ignored=pct(obj_ign, gt_fg),
        precision=pct(diag.sum(), hist.sum()))


def summarize_per_class(hist: torch.Tensor, ignored_by_class: torch.Tensor,
                        classes: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per-class percentages from :func:`accumulate`'s statistics.

    Returns:
        dict: per class name, ``IoU`` on labelled pixels; ``precision``: the
        share of the pixels labelled as the class that are the class
        (100 - precision is the over-activation rate FP / (TP + FP)); and of
        the class's pixels in the masks, the shares labelled as the class
        (``as_class``), as background (``as_bg``; for the background class,
        as any object) and ignored (``ignored``).
    """
    hist, ign = hist.double(), ignored_by_class.double()
    diag = hist.diag()
    union = hist.sum(0) + hist.sum(1) - diag
    pixels = hist.sum(1) + ign

    def pct(x, n) -> float:
        return 100. * float(x) / float(n) if n else float('nan')

    out = {}
    for c, name in enumerate(classes):
        wrong_side = hist[c, 1:].sum() if c == 0 else hist[c, 0]
        out[name] = dict(
            IoU=pct(diag[c], union[c]),
            precision=pct(diag[c], hist[:, c].sum()),
            as_class=pct(diag[c], pixels[c]),
            as_bg=pct(wrong_side, pixels[c]),
            ignored=pct(ign[c], pixels[c]))
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config of a WSSS segmentor')
    parser.add_argument('checkpoint', help='training checkpoint')
    parser.add_argument('--data-root', help='dataset folder')
    parser.add_argument('--split', default='train', help='train or val')
    parser.add_argument(
        '--num-images', type=int, help='first N images (default all)')
    parser.add_argument(
        '--branch',
        type=int,
        default=None,
        help='DuPL: the student whose pseudo labels are scored (1 or 2; '
        'default 1). Each student\'s labels supervise the other one. '
        'ASDT: 1 the seg teacher\'s label (RRM\'s reliable label), 2 the '
        'student\'s at that iteration (the class teacher\'s or B^st).')
    parser.add_argument(
        '--iter',
        type=int,
        help='training iteration whose gates and thresholds apply (default '
        'the checkpoint\'s)')
    parser.add_argument('--out', help='write the figures as JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config '
        'overrides, as in tools/test.py')
    # What load_tool_config reads besides the above; nothing is written.
    parser.set_defaults(launcher='none', work_dir=None)
    return parser.parse_args(argv)


def evaluate(cfg,
             checkpoint: str,
             split: str = 'train',
             num_images: Optional[int] = None,
             branch: Optional[int] = None,
             iteration: Optional[int] = None) -> Dict[str, float]:
    """Pseudo-label statistics of ``checkpoint`` on ``split`` (see module
    docstring)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    from mmseg_wsss.engine.runner import load_checkpoint_strict
    from mmseg_wsss.utils.config_utils import dataset_classes

    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    # Strictly, as tools/test.py: the wrong weights must not be scored.
    ckpt = load_checkpoint_strict(
        model,
        checkpoint,
        classes=dataset_classes(cfg.test_dataloader.dataset))
    model.eval()
    if iteration is None:
        iteration = int(ckpt.get('meta', {}).get('iter', 0))
    if not hasattr(model, 'pseudo_labels'):
        raise TypeError(f'{type(model).__name__} is not a WSSS segmentor '
                        '(it has no pseudo_labels())')
    if branch is not None and not (hasattr(model, 'students')
                                   or hasattr(model, 'student_head')):
        raise ValueError('--branch is for methods with two labels (DuPL, '
                         'ASDT)')

    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.ann_file = f'ImageSets/Segmentation/{split}.txt'
    dataset = DATASETS.build(ds_cfg)
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    C = model.num_classes
    hist = torch.zeros(C, C, dtype=torch.long)
    counts = torch.zeros(4, dtype=torch.long)
    ignored_by_class = torch.zeros(C, dtype=torch.long)
    with torch.no_grad():
        for i in range(n):
            item = dataset[i]
            data = model.data_preprocessor(
                dict(
                    inputs=[item['inputs']],
                    data_samples=[item['data_samples']]), False)
            inputs, samples = data['inputs'], data['data_samples']
            label = model.pseudo_labels(inputs, samples, iteration)
            if isinstance(label, list):  # one per network / head
                label = label[(branch or 1) - 1]
            h, w = samples[0].metainfo['img_shape']
            gt = samples[0].gt_sem_seg.data[0]
            accumulate(hist, counts, label[0, :h, :w], gt[:h, :w],
                       ignored_by_class)
    stats = summarize(hist, counts)
    stats.update(images=n, iter=iteration)
    classes = dataset.metainfo.get('classes') or [str(c) for c in range(C)]
    stats['per_class'] = summarize_per_class(hist, ignored_by_class, classes)
    return stats


def main(argv=None) -> int:
    from mmseg_wsss.utils import load_tool_config
    args = parse_args(argv)
    cfg = load_tool_config(args)
    stats = evaluate(cfg, args.checkpoint, args.split, args.num_images,
                     args.branch, args.iter)
    print(f'{stats["images"]} {args.split} images, iteration '
          f'{stats["iter"]}:')
    for key, value in stats.items():
        if key not in ('images', 'iter', 'per_class'):
            print(f'  {key:<13} {value:6.1f} %')
    columns = ('IoU', 'precision', 'as_class', 'as_bg', 'ignored')
    print('  per class (%; as_bg of background: labelled as an object):')
    print(f'  {"class":<13}' + ''.join(f'{c:>10}' for c in columns))
    for name, row in stats['per_class'].items():
        print(f'  {name:<13}' + ''.join(f'{row[c]:10.1f}' for c in columns))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(stats, f, indent=1)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
