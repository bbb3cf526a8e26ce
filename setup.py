# Copyright (c) OpenMMLab. All rights reserved.
"""Packaging for mmseg_wsss.

Runtime dependencies are declared without hard-pinning torch and without
mmcv: pip cannot express "mmcv or mmcv-lite", and installing one over the
other breaks compiled ops. ``mmseg_wsss`` checks for mmcv at import time and
says what to install. The verified pins for CPU machines live in
``requirements/cpu-lock.txt`` and are installed by ``tools/setup_env.sh``.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(fname: str) -> list:
    """Read a requirements file, skipping comments and blank lines."""
    path = osp.join(osp.dirname(__file__), 'requirements', fname)
    with open(path) as f:
        lines = [line.split('#')[0].strip() for line in f]
    return [line for line in lines if line and not line.startswith('-')]


def get_version() -> str:
    namespace = {}
    with open(osp.join('mmseg_wsss', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), namespace)
    return namespace['__version__']


setup(
    name='mmseg_wsss',
    version=get_version(),
    description='Single-stage weakly supervised semantic segmentation '
    '(DuPL, FSR, ASDT, 1Stage, AGEN, ToCo) on MMSegmentation 1.x',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    # mmseg_wsss_light: the numpy/Pillow-only helpers (no torch/mmseg) that
    # the light tools share with mmseg_wsss.
    packages=find_packages(
        include=('mmseg_wsss', 'mmseg_wsss.*', 'mmseg_wsss_light',
                 'mmseg_wsss_light.*')),
    include_package_data=True,
    python_requires='>=3.8',
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'crf': ['pydensecrf2'],
        'mmpretrain': ['mmpretrain>=1.2.0'],
        # TensorBoard logging: tools/train.py --tensorboard.
        'tb': ['tensorboard'],
        'tests': read_requirements('tests.txt'),
        'all': read_requirements('optional.txt') +
        read_requirements('tests.txt'),
    },
    zip_safe=False)
