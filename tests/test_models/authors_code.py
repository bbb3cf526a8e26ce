# Copyright (c) OpenMMLab. All rights reserved.
"""The authors' public code for the parity tests (``test_*_vs_authors.py``).

Each test module names the environment variable holding a local checkout
(``WSSS_AUTHORS_TOCO``, ``WSSS_AUTHORS_DUPL``, ``WSSS_AUTHORS_FSR``,
``WSSS_AUTHORS_1STAGE``, ``WSSS_AUTHORS_RRM``) and is
skipped without it. Files are imported by path under private module names
at run time; nothing of the authors' code is copied into this project.
"""
import ast
import importlib.util
import os
import os.path as osp
import sys
import types
import warnings
from typing import Dict, Optional, Sequence

import numpy as np
import pytest
import torch

THEIR_PAR = dict(num_iter=10, dilations=[1, 2, 4, 8, 12, 24])


def skip_without(env: str, repo: str):
    """Module marks: skip unless ``env`` names a checkout; one thread."""
    return [
        pytest.mark.skipif(
            not os.environ.get(env),
            reason=f'{env} is not set (a local checkout of {repo})'),
        pytest.mark.usefixtures('one_thread')
    ]


def load_file(env: str,
              relpath: str,
              stubs: Optional[Dict[str, Sequence[str]]] = None,
              package_root: bool = False) -> types.ModuleType:
    """Import ``relpath`` of the checkout in ``$env`` (once per process).

    Args:
        env (str): Environment variable with the checkout's path.
        relpath (str): File inside the checkout, e.g. 'model/PAR.py'.
        stubs (dict): Modules the file imports that cannot be imported here
            (a compiled extension it does not need for the parts compared),
            with the names taken from them; stand-ins exist only while the
            file loads.
        package_root (bool): The file imports the checkout's own packages
            (``import tool.imutils``): the checkout is on ``sys.path`` while
            it loads, and the modules imported from it are dropped from
            ``sys.modules`` afterwards (only the file's module keeps them),
            so another checkout's packages of the same name cannot clash.
    """
    name = f'authors_{env.lower()}_' + relpath.replace('/', '_')[:-3]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, osp.join(os.environ[env], relpath))
    module = importlib.util.module_from_spec(spec)
    stubs = stubs or {}
    added = [stub for stub in stubs if stub not in sys.modules]
    for stub in added:
        sys.modules[stub] = types.ModuleType(stub)
        for attr in stubs[stub]:
            setattr(sys.modules[stub], attr, None)
    root = osp.abspath(os.environ[env])
    if package_root:
        sys.path.insert(0, root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # e.g. timm.models.layers
            spec.loader.exec_module(module)
    finally:
        for stub in added:
            del sys.modules[stub]
        if package_root:
            sys.path.remove(root)
            for key, mod in list(sys.modules.items()):
                # Namespace packages (no __init__.py) have only __path__.
                path = getattr(mod, '__file__', None) or next(
                    iter(getattr(mod, '__path__', None) or []), '')
                if osp.abspath(path).startswith(root + os.sep):
                    del sys.modules[key]
    sys.modules[name] = module
    return module


def load_function(env: str, relpath: str, name: str):
    """Compile one top-level function of a file on its own (with numpy as
    ``np``, torch, and ``torch.nn.functional`` as ``F``), without running
    the file's other imports."""
    with open(osp.join(os.environ[env], relpath)) as f:
        tree = ast.parse(f.read())
    (node, ) = [
        n for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name == name
    ]
    namespace = {'np': np, 'torch': torch, 'F': torch.nn.functional}
    exec(compile(ast.Module([node], []), relpath, 'exec'), namespace)
    return namespace[name]


def cam_scene(B: int = 3, C: int = 20, size: int = 64, seed: int = 0):
    """Inputs of the CAM-to-label parts, as their training scripts see them.

    Returns:
        tuple: Smooth normalised CAMs (B, C, size, size), the first image's
        weak (so background and the ignore band occur), multi-hot labels
        with 1, 2, 3... classes, images in [0, 1] with flat regions (so
        PAR's affinities differ) and padding boxes ``[h0, h1, w0, w1]``.
    """
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(B, C, size // 8, size // 8, generator=gen)
    cam = torch.nn.functional.interpolate(
        low, size=(size, size), mode='bilinear', align_corners=False)
    cam[0] *= 0.4
    label = torch.zeros(B, C)
    for b in range(B):
        label[b, torch.randperm(C, generator=gen)[:b + 1]] = 1
    blocks = torch.rand(B, 3, 4, 4, generator=gen)
    images = torch.nn.functional.interpolate(
        blocks, size=(size, size), mode='nearest')
    images = (images +
              0.05 * torch.rand(B, 3, size, size, generator=gen)).clamp(0, 1)
    boxes = [[0, size, 0, size], [4, size - 8, 0, size],
             [0, size, 8, size - 4]][:B]
    return cam, label, images, boxes
