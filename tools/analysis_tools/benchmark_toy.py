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
(the resolved config), ``commit.txt`` (the commit that started it),
``seed.txt`` (``randomness.seed``) and ``machine.txt`` (the kernel
fingerprint of the machine that started it,
:func:`mmseg_wsss.utils.kernel_fingerprint`: runs are deterministic on one
kind of CPU, not across kinds; each ``tools/train.py`` log names its
own); if the resolved config
changes the row's folder is refused (move it away or pass another
``--work-dir``). Figures come from the last checkpoint only.

Seeds: ``--seeds 0 1 2`` trains each config once per seed
(``randomness.seed``; the second stage gets the seed too). The config's
own seed keeps the folder ``<config name>``, another seed ``S`` gets
``<config name>-seed<S>``. The table shows every seed's row and, for a
config with two or more seeds done on a domain, their mean and sample
standard deviation.

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
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        help='train each config with each of these seeds (randomness.seed; '
        'default: the config\'s own)')
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


def resolved_config(config: str,
                    data_root: str,
                    cfg_options: Optional[Dict] = None) -> Dict:
    """The config as the tools see it with ``--data-root`` (and
    ``--cfg-options``), its ``max_iters`` and its seed (None if unset)."""
    from mmseg_wsss.utils import load_tool_config
    args = argparse.Namespace(
        config=osp.join(ROOT, config),
        data_root=data_root,
        cfg_options=cfg_options,
        work_dir=None,
        launcher='none')
    cfg = load_tool_config(args)
    seed = cfg.get('randomness', {}).get('seed')
    return dict(
        text=cfg.pretty_text,
        max_iters=int(cfg.train_cfg.max_iters),
        seed=seed)


def git_commit() -> str:
    try:
        return subprocess.check_output(['git', 'rev-parse', '--short', 'HEAD'],
                                       cwd=ROOT,
                                       text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def machine() -> str:
    """This machine's kernel fingerprint (``machine.txt`` of a row)."""
    from mmseg_wsss.utils import kernel_fingerprint
    return kernel_fingerprint()


def claim_row(row_dir: str,
              config_text: str,
              seed: Optional[int] = None) -> None:
    """Record the resolved config of a row (and its commit, seed and
    machine); refuse another one."""
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
    with open(osp.join(row_dir, 'seed.txt'), 'w') as f:
        f.write(f'{seed}\n' if seed is not None else '-\n')
    with open(osp.join(row_dir, 'machine.txt'), 'w') as f:
        f.write(machine() + '\n')


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


def do_method(config: str,
              data_root: str,
              row_dir: str,
              second_stage: bool,
              seed: Optional[int] = None) -> None:
    """Every step of one config on one domain; ``row_dir`` is the folder of
    the config's own seed, another ``seed`` runs in ``row_dir-seed<S>``."""
    info = resolved_config(config, data_root)
    options = []
    if seed is not None and seed != info['seed']:
        row_dir = f'{row_dir}-seed{seed}'
        options = [f'randomness.seed={seed}']
        info = resolved_config(config, data_root, {'randomness.seed': seed})
    claim_row(row_dir, info['text'], info['seed'])
    train = osp.join(row_dir, 'train')
    ckpt = osp.join(train, f'iter_{info["max_iters"]}.pth')
    py = python()
    seed_args = ['--cfg-options', *options] if options else []
    if not osp.isfile(ckpt):
        run([
            py, 'tools/train.py', config, '--data-root', data_root,
            '--work-dir', train, '--resume-if-possible', *seed_args
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
            second, '--data-root', data_root, '--crf', *seed_args
        ], osp.join(row_dir, 'second_stage.log'))


def do_oracle(data_root: str, row_dir: str) -> None:
    info = resolved_config(ORACLE, data_root)
    claim_row(row_dir, info['text'], info['seed'])
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


def row_file(row_dir: str, name: str) -> str:
    """A row's record (``commit.txt``, ``seed.txt``, ``machine.txt``), or
    '-' (rows made before the record existed)."""
    path = osp.join(row_dir, name)
    if not osp.isfile(path):
        return '-'
    with open(path) as f:
        return f.read().strip() or '-'


def seed_rows(row_dir: str) -> List[str]:
    """A config's row folder on a domain and those of its other seeds
    (``row_dir-seed<S>``, by seed)."""
    parent, name = osp.split(row_dir)
    others = []
    if osp.isdir(parent):
        for entry in os.listdir(parent):
            seed = entry[len(name) + len('-seed'):]
            if entry.startswith(f'{name}-seed') and seed.isdigit():
                others.append((int(seed), osp.join(parent, entry)))
    return [row_dir] + [path for _, path in sorted(others)]


def mean_sd(values: List[Optional[float]]) -> str:
    """``mean ± sd`` (sample sd) of the values present, '-' under two."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return '-'
    return (f'{statistics.mean(values):.1f} ± '
            f'{statistics.stdev(values):.1f}')


def domain_name(data_root: str) -> str:
    return osp.basename(osp.normpath(data_root))


def fmt(value: Optional[float], form: str = '{:.1f}') -> str:
    return '-' if value is None else form.format(value)


def run_cells(row: str) -> str:
    """A row's last four cells: step time, training time, commit, machine."""
    times = train_times(osp.join(row, 'train'))
    return (f'{fmt(times["step"], "{:.2f}")} | {fmt(times["wall"], "{:.0f}")}'
            f' | {row_file(row, "commit.txt")} | '
            f'{row_file(row, "machine.txt")}')


def table(args) -> str:
    domains = [domain_name(d) for d in args.data_root]
    lines = [
        '| config | domain | seed | CAM mIoU (train) | val mIoU | + CRF | '
        'second stage val mIoU | step (s) | train time (min) | commit | '
        'machine |', '|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    metric_files = (('cam_train', 'metrics.json'), ('test', 'metrics.json'),
                    ('test_crf', 'metrics.json'),
                    ('second_stage', 'second_stage_test', 'metrics.json'))
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        for domain in domains:
            columns = []  # per seed row: its four metrics
            rows = seed_rows(osp.join(args.work_dir, domain, name))
            for row in rows:
                values = [metric(osp.join(row, *f)) for f in metric_files]
                columns.append(values)
                lines.append(
                    f'| `{name}` | {domain} | {row_file(row, "seed.txt")} | ' +
                    ' | '.join(fmt(v)
                               for v in values) + f' | {run_cells(row)} |')
            if len(rows) > 1:
                machines = {row_file(row, 'machine.txt') for row in rows}
                lines.append(
                    f'| `{name}`, mean ± sd | {domain} | {len(rows)} seeds | '
                    + ' | '.join(mean_sd(list(c))
                                 for c in zip(*columns)) + ' | - | - | - | ' +
                    (machines.pop() if len(machines) == 1 else 'several') +
                    ' |')
    for domain in domains:
        row = osp.join(args.work_dir, domain, 'oracle')
        lines.append(
            f'| second stage on the true masks (`deeplabv2_toy_oracle.py`) | '
            f'{domain} | {row_file(row, "seed.txt")} | - | - | - | '
            f'{fmt(metric(osp.join(row, "test", "metrics.json")))} | '
            f'{run_cells(row)} |')
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
                for seed in args.seeds or [None]:
                    do_method(config, data_root,
                              osp.join(args.work_dir, domain, name),
                              not args.no_second_stage, seed)
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
