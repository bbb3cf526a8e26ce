# Copyright (c) OpenMMLab. All rights reserved.
"""Per-class report of label maps against the masks.

Scores the PNG label maps of ``tools/test.py --out DIR`` (or any folder of
label maps, e.g. ``tools/make_pseudo_labels.py`` output) against the masks:
per class IoU, precision, recall and over-activation rate FP / (TP + FP),
where the false positives lie (distance to the nearest pixel of the class:
a boundary band, farther, or a class absent from the image), and the
confusion matrix, as Markdown, JSON and a PNG plot.

Example::

    python tools/test.py configs/toco/toco_toy.py \\
        work_dirs/toco_toy/iter_3000.pth --out work_dirs/toco_toy/pred
    python tools/analysis_tools/report.py work_dirs/toco_toy/pred \\
        --data-root data/toy --out-dir work_dirs/toco_toy/report

Writes ``report.md``, ``report.json`` and ``confusion.png`` (rows: ground
truth, normalised to 100 %; columns: prediction) into ``--out-dir``, and
prints the Markdown.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmseg_wsss.evaluation.label_map_stats import (  # noqa: E402
    FP_DISTANCE_BINS, class_figures, scan_label_folders)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pred_dir', help='folder of PNG label maps')
    parser.add_argument(
        '--data-root',
        help='VOC-layout dataset: masks from SegmentationClass/, class '
        'names from classes.txt')
    parser.add_argument(
        '--gt-dir', help='folder of the masks (instead of --data-root)')
    parser.add_argument(
        '--classes',
        nargs='+',
        help='class names, background first (instead of classes.txt)')
    parser.add_argument(
        '--out-dir', help='write report.md, report.json, confusion.png here')
    parser.add_argument(
        '--title',
        default=None,
        help='heading of the report (default: '
        'the folder name)')
    args = parser.parse_args(argv)
    if not args.gt_dir and not args.data_root:
        parser.error('give --data-root or --gt-dir')
    return args


def class_names(args) -> List[str]:
    if args.classes:
        return list(args.classes)
    if args.data_root:
        path = osp.join(args.data_root, 'classes.txt')
        if osp.isfile(path):
            with open(path) as f:
                return [line.strip() for line in f if line.strip()]
    raise SystemExit('no class names: give --classes, or a --data-root with '
                     'classes.txt')


def build_report(hist: np.ndarray, fp: np.ndarray,
                 names: Sequence[str]) -> Dict:
    """JSON-able figures of :func:`scan_label_folders`'s counts."""
    figs = class_figures(hist)
    C = len(names)
    present = (hist[:, :C].sum(0) + hist.sum(1)) > 0
    fp_share = 100 * fp / np.maximum(fp.sum(1, keepdims=True), 1)
    bins = [f'<={b}px' for b in FP_DISTANCE_BINS]
    bins += [f'>{FP_DISTANCE_BINS[-1]}px', 'absent class']
    per_class = {}
    for c, name in enumerate(names):
        row = {k: float(v[c]) for k, v in figs.items()}
        row['pixels'] = int(hist[c].sum())
        if c > 0:
            row['fp_by_distance'] = dict(zip(bins, fp_share[c].tolist()))
        per_class[name] = row
    total_fp = fp[1:].sum(0)
    return dict(
        mIoU=float(np.nanmean(figs['IoU'][present])),
        mOA=float(np.nanmean(figs['over_activation'][present])),
        aAcc=float(100 * np.diag(hist[:, :C]).sum() / max(hist.sum(), 1)),
        ignored=float(100 * hist[:, C].sum() / max(hist.sum(), 1)),
        per_class=per_class,
        fp_by_distance=dict(
            zip(bins, (100 * total_fp / max(total_fp.sum(), 1)).tolist())),
        confusion=hist.tolist())


def to_markdown(report: Dict, title: str, num_images: int) -> str:
    fmt = (lambda v: '-' if v is None or np.isnan(v) else f'{v:.1f}')
    bins = list(report['fp_by_distance'])
    lines = [
        f'# {title}', '',
        f'{num_images} images: mIoU **{report["mIoU"]:.1f}**, mOA '
        f'{report["mOA"]:.1f}, aAcc {report["aAcc"]:.1f}' +
        (f', ignored {report["ignored"]:.1f}' if report['ignored'] else '') +
        ' (%).', '', '| class | IoU | precision | recall | over-activation | '
        'false positives at ' + ' / '.join(bins) + ' |',
        '|---|---|---|---|---|---|'
    ]
    for name, row in report['per_class'].items():
        dist = row.get('fp_by_distance')
        lines.append(f'| {name} | {fmt(row["IoU"])} | '
                     f'{fmt(row["precision"])} | {fmt(row["recall"])} | '
                     f'{fmt(row["over_activation"])} | ' +
                     (' / '.join(f'{v:.0f}'
                                 for v in dist.values()) if dist else '-') +
                     ' |')
    lines += [
        '', 'All false positives of the object classes by distance to the '
        'nearest pixel of their class (%): ' +
        ', '.join(f'{k} {v:.1f}'
                  for k, v in report['fp_by_distance'].items()) + '.', ''
    ]
    return '\n'.join(lines)


def plot_confusion(hist: np.ndarray, names: Sequence[str], path: str,
                   title: str) -> None:
    """Row-normalised confusion matrix as a PNG (an 'ignore' column when
    the label maps leave pixels unlabelled)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = hist.sum(1, keepdims=True)
    norm = 100 * hist / np.maximum(rows, 1)
    columns = list(names)
    if hist[:, len(names)].any():
        columns.append('ignore')
    norm = norm[:, :len(columns)]
    size = 1.0 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=100)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    ax.set_title(title)
    for i in range(len(names)):
        for j in range(len(columns)):
            if norm[i, j] >= 0.5:
                ax.text(
                    j,
                    i,
                    f'{norm[i, j]:.0f}',
                    ha='center',
                    va='center',
                    fontsize=7,
                    color='white' if norm[i, j] > 50 else 'black')
    fig.colorbar(im, ax=ax, label='% of the row')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = class_names(args)
    gt_dir = args.gt_dir or osp.join(args.data_root, 'SegmentationClass')
    hist, fp, n = scan_label_folders(args.pred_dir, gt_dir, len(names))
    if n == 0:
        raise SystemExit(f'no PNG label maps in {args.pred_dir}')
    title = args.title or osp.basename(osp.normpath(args.pred_dir))
    report = build_report(hist, fp, names)
    text = to_markdown(report, title, n)
    print(text)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        with open(osp.join(args.out_dir, 'report.md'), 'w') as f:
            f.write(text)
        with open(osp.join(args.out_dir, 'report.json'), 'w') as f:
            json.dump(dict(report, images=n, classes=names), f, indent=1)
        plot_confusion(hist, names, osp.join(args.out_dir, 'confusion.png'),
                       title)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
