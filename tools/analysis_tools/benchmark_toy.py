# Copyright (c) OpenMMLab. All rights reserved.
"""Train, test and second-stage every toy config; write one Markdown table.

``tools/benchmark_toy.sh`` runs this. Per method's toy config (CAM
baselines, 1Stage, ToCo, DuPL; add new ones with ``--configs``) and per
dataset folder (``--data-root``, e.g. ``data/toy`` and ``data/toy2``), in
``WORK_DIR/<domain>/<config name>/``:

1. ``train/``: ``tools/train.py --resume-if-possible`` (done when the last
   checkpoint of ``max_iters`` exists);
2. ``cam_train/``: the CAM pseudo labels of the train split with the
   image-level classes (``tools/test.py --pseudo-labels``: the papers' "CAM
   mIoU on train");
3. ``test/`` and ``test_crf/``: ``tools/test.py`` on val, last checkpoint,
   without and with ``--crf``;
4. ``second_stage/``: ``tools/second_stage.sh`` with the toy second stage
   (``configs/second_stage/deeplabv2_toy.py``) on the model's pseudo labels
   (+ CRF where the config has one);

and once per domain the second stage on the true masks
(``deeplabv2_toy_oracle.py``, ``WORK_DIR/<domain>/oracle/``), the bound a
second stage could reach. Every step is skipped when its output exists, so
the script resumes where it stopped and the table fills across sessions.
A row is computed for one resolved config: its folder holds ``config.txt``
(the resolved config) and ``commit.txt`` (the commit that started it); if
the resolved config changes the row's folder is refused (move it away or
pass another ``--work-dir``). Figures come from the last checkpoint only.

The table (``--out``, and between the markers
``<!-- benchmark_toy:begin -->`` / ``<!-- benchmark_toy:end -->`` of
``--update-doc``) has per domain: CAM mIoU on train, val mIoU without and
with CRF, the second stage's val mIoU, the median training step time and
the training wall time (sum of the logged intervals).

Example::

    bash tools/benchmark_toy.sh --data-root data/toy --data-root data/toy2 \\
        --update-doc docs/benchmark_toy.md
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEFAULT_CONFIGS = [
    'configs/cam_baseline/cam_resnet_toy.py',
    'configs/single_stage/single_stage_toy.py',
    'configs/cam_baseline/cam_vit_toy.py',
    'configs/toco/toco-noctc_toy.py',
    'configs/toco/toco_toy.py',
    'configs/dupl/dupl_toy.py',
    'configs/fsr/fsr_toy.py',
]
SECOND_STAGE = 'configs/second_stage/deeplabv2_toy.py'
ORACLE = 'configs/second_stage/deeplabv2_toy_oracle.py'
BEGIN, END = '<!-- benchmark_toy:begin -->', '<!-- benchmark_toy:end -->'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--data-root',
        action='append',
        required=True,
        help='a toy dataset folder (repeat for several domains)')
    parser.add_argument(
        '--configs', nargs='+', default=DEFAULT_CONFIGS, help='toy configs')
    parser.add_argument(
        '--work-dir', default='work_dirs/benchmark_toy', help='runs')
    parser.add_argument('--out', help='write the Markdown table here')
    parser.add_argument(
        '--update-doc',
        help='replace the table between the benchmark_toy markers of this '
        'Markdown file')
    parser.add_argument(
        '--table-only',
        action='store_true',
        help='run nothing: write the table of what is done')
    parser.add_argument(
        '--no-second-stage',
        action='store_true',
        help='skip the second stages (train and test the methods only)')
    return parser.parse_args(argv)


def python() -> str:
    return os.environ.get('PYTHON') or sys.executable


def run(cmd: List[str], log: str) -> None:
    """Run a step, its output to ``log``; an error names the log."""
    print(f'[benchmark_toy] {" ".join(cmd)}  (log: {log})', flush=True)
    os.makedirs(osp.dirname(log), exist_ok=True)
    with open(log, 'a') as f:
        code = subprocess.call(
            cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if code:
        raise RuntimeError(f'step failed (exit {code}): see {log}')


def resolved_config(config: str, data_root: str) -> Dict:
    """The config as the tools see it with ``--data-root``, and its
    ``max_iters``."""
    from mmseg_wsss.utils import load_tool_config
    args = argparse.Namespace(
        config=osp.join(ROOT, config),
        data_root=data_root,
        cfg_options=None,
        work_dir=None,
        launcher='none')
    cfg = load_tool_config(args)
    return dict(text=cfg.pretty_text, max_iters=int(cfg.train_cfg.max_iters))


def git_commit() -> str:
    try:
        return subprocess.check_output(['git', 'rev-parse', '--short', 'HEAD'],
                                       cwd=ROOT,
                                       text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def claim_row(row_dir: str, config_text: str) -> None:
    """Record the resolved config of a row; refuse another one."""
    os.makedirs(row_dir, exist_ok=True)
    path = osp.join(row_dir, 'config.txt')
    if osp.isfile(path):
        with open(path) as f:
            if f.read() != config_text:
                raise SystemExit(
                    f'{row_dir} holds runs of another resolved config '
                    f'(diff it with {path}); move it away or use another '
                    '--work-dir')
        return
    with open(path, 'w') as f:
        f.write(config_text)
    with open(osp.join(row_dir, 'commit.txt'), 'w') as f:
        f.write(git_commit() + '\n')


def metric(path: str, key: str = 'mIoU') -> Optional[float]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return float(json.load(f)[key])


def train_times(train_dir: str) -> Dict[str, Optional[float]]:
    """Median step time (s) and wall time (min) from mmengine's scalars."""
    steps, wall, last_iter = [], 0., 0
    if not osp.isdir(train_dir):
        return dict(step=None, wall=None)
    for run_dir in sorted(os.listdir(train_dir)):
        path = osp.join(train_dir, run_dir, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        prev = None
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if 'time' not in entry or 'loss' not in entry:
                    continue
                it = int(entry['iter'])
                steps.append(float(entry['time']))
                start = prev if prev is not None else max(it - 50, last_iter)
                wall += float(entry['time']) * max(it - start, 0)
                prev = it
        last_iter = prev or last_iter
    if not steps:
        return dict(step=None, wall=None)
    return dict(step=statistics.median(steps), wall=wall / 60)


def do_method(config: str, data_root: str, row_dir: str,
              second_stage: bool) -> None:
    info = resolved_config(config, data_root)
    claim_row(row_dir, info['text'])
    train = osp.join(row_dir, 'train')
    ckpt = osp.join(train, f'iter_{info["max_iters"]}.pth')
    py = python()
    if not osp.isfile(ckpt):
        run([
            py, 'tools/train.py', config, '--data-root', data_root,
            '--work-dir', train, '--resume-if-possible'
        ], osp.join(row_dir, 'train.log'))
    steps = [('cam_train', ['--pseudo-labels']), ('test', []),
             ('test_crf', ['--crf'])]
    for name, extra in steps:
        out = osp.join(row_dir, name)
        if not osp.isfile(osp.join(out, 'metrics.json')):
            run([
                py, 'tools/test.py', config, ckpt, '--data-root', data_root,
                '--work-dir', out, *extra
            ], osp.join(row_dir, f'{name}.log'))
    second = osp.join(row_dir, 'second_stage')
    if second_stage and not osp.isfile(
            osp.join(second, 'second_stage_test', 'metrics.json')):
        run([
            'bash', 'tools/second_stage.sh', config, ckpt, SECOND_STAGE,
            second, '--data-root', data_root, '--crf'
        ], osp.join(row_dir, 'second_stage.log'))


def do_oracle(data_root: str, row_dir: str) -> None:
    info = resolved_config(ORACLE, data_root)
    claim_row(row_dir, info['text'])
    train = osp.join(row_dir, 'train')
    ckpt = osp.join(train, f'iter_{info["max_iters"]}.pth')
    if not osp.isfile(ckpt):
        run([
            python(), 'tools/train.py', ORACLE, '--data-root', data_root,
            '--work-dir', train, '--resume-if-possible'
        ], osp.join(row_dir, 'train.log'))
    if not osp.isfile(osp.join(row_dir, 'test', 'metrics.json')):
        run([
            python(), 'tools/test.py', ORACLE, ckpt, '--data-root', data_root,
            '--work-dir',
            osp.join(row_dir, 'test')
        ], osp.join(row_dir, 'test.log'))


def row_commit(row_dir: str) -> str:
    """The commit that started a row (``commit.txt``), or '-'."""
    path = osp.join(row_dir, 'commit.txt')
    if not osp.isfile(path):
        return '-'
    with open(path) as f:
        return f.read().strip() or '-'


def domain_name(data_root: str) -> str:
    return osp.basename(osp.normpath(data_root))


def table(args) -> str:
    fmt = (lambda v, f='{:.1f}': '-' if v is None else f.format(v))
    domains = [domain_name(d) for d in args.data_root]
    lines = [
        '| config | domain | CAM mIoU (train) | val mIoU | + CRF | second '
        'stage val mIoU | step (s) | train time (min) | commit |',
        '|---|---|---|---|---|---|---|---|---|'
    ]
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        for domain in domains:
            row = osp.join(args.work_dir, domain, name)
            times = train_times(osp.join(row, 'train'))
            commit = row_commit(row)
            ss = osp.join(row, 'second_stage', 'second_stage_test',
                          'metrics.json')
            lines.append(
                f'| `{name}` | {domain} | '
                f'{fmt(metric(osp.join(row, "cam_train", "metrics.json")))}'
                f' | {fmt(metric(osp.join(row, "test", "metrics.json")))} | '
                f'{fmt(metric(osp.join(row, "test_crf", "metrics.json")))} '
                f'| {fmt(metric(ss))} | {fmt(times["step"], "{:.2f}")} | '
                f'{fmt(times["wall"], "{:.0f}")} | {commit} |')
    for domain in domains:
        row = osp.join(args.work_dir, domain, 'oracle')
        times = train_times(osp.join(row, 'train'))
        lines.append(
            f'| second stage on the true masks (`deeplabv2_toy_oracle.py`) | '
            f'{domain} | - | - | - | '
            f'{fmt(metric(osp.join(row, "test", "metrics.json")))} | '
            f'{fmt(times["step"], "{:.2f}")} | '
            f'{fmt(times["wall"], "{:.0f}")} | {row_commit(row)} |')
    return '\n'.join(lines) + '\n'


def update_doc(path: str, text: str) -> None:
    with open(path) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f'{path} has no {BEGIN} ... {END} markers')
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, 'w') as f:
        f.write(head + BEGIN + '\n' + text + END + tail)


def main(argv=None) -> int:
    args = parse_args(argv)
    for d in args.data_root:
        if not osp.isdir(d):
            raise SystemExit(f'no dataset folder {d} (generate it with '
                             'tools/generate_toy_dataset.py)')
    args.data_root = [osp.abspath(d) for d in args.data_root]
    args.work_dir = osp.abspath(args.work_dir)
    if not args.table_only:
        for data_root in args.data_root:
            domain = domain_name(data_root)
            if not args.no_second_stage:
                do_oracle(data_root, osp.join(args.work_dir, domain, 'oracle'))
            for config in args.configs:
                name = osp.splitext(osp.basename(config))[0]
                do_method(config, data_root,
                          osp.join(args.work_dir, domain, name),
                          not args.no_second_stage)
    text = table(args)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    if args.update_doc:
        update_doc(args.update_doc, text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
