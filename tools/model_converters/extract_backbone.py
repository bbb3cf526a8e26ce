# Copyright (c) OpenMMLab. All rights reserved.
"""Extract the backbone weights of an mmengine training checkpoint.

The result is a plain ``{'state_dict': ...}`` checkpoint with backbone keys
(``backbone.`` removed) that a ``dict(type='Pretrained', checkpoint=...)``
``init_cfg`` of the same backbone loads, as for a converted ImageNet model.
It makes the toy stand-in for DeiT-B (docs/toy_dataset.md)::

    python tools/model_converters/extract_backbone.py \\
        work_dirs/vit_toy_pretrain/iter_3000.pth \\
        pretrain/vit-tiny-p8_toy-pretrain.pth

The checkpoint is loaded weights-only: tensors plus the few objects an
mmengine Runner checkpoint holds (registered by ``import mmseg_wsss``). A
file that needs more is refused unless ``--unsafe-pickle`` is given.
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Mapping

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
# (import mmseg_wsss registers the Runner checkpoint objects as safe)
from mmseg_wsss.engine.runner.checkpoint import (  # noqa: E402
    UNSAFE_PICKLE_HELP, load_checkpoint_file)


def extract_prefix(state_dict: Mapping[str, torch.Tensor],
                   prefix: str = 'backbone.') -> Dict[str, torch.Tensor]:
    """Keys starting with ``prefix``, with the prefix removed.

    Args:
        state_dict (Mapping[str, Tensor]): A model state dict.
        prefix (str): Sub-module prefix, with its trailing dot.

    Returns:
        dict[str, Tensor]: The sub-module's state dict.

    Raises:
        KeyError: No key starts with ``prefix``.
    """
    out = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                      if k.startswith(prefix))
    if not out:
        heads = sorted({k.split('.', 1)[0] for k in state_dict})
        raise KeyError(f'no key starts with "{prefix}"; top-level modules: '
                       f'{heads}')
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Extract backbone weights from a training checkpoint.')
    parser.add_argument('src', help='mmengine checkpoint (iter_N.pth)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help='sub-module prefix to keep (e.g. network.backbone. for ToCo, '
        'students.0.backbone. for DuPL)')
    parser.add_argument(
        '--unsafe-pickle', action='store_true', help=UNSAFE_PICKLE_HELP)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Runner checkpoints also hold the message hub and optimizer state;
    # only the weights are read.
    checkpoint = load_checkpoint_file(args.src, args.unsafe_pickle)
    state_dict = checkpoint.get('state_dict', checkpoint)
    backbone = extract_prefix(state_dict, args.prefix)
    if osp.dirname(args.dst):
        os.makedirs(osp.dirname(args.dst), exist_ok=True)
    torch.save({'state_dict': backbone}, args.dst)
    print(f'{len(backbone)} tensors, '
          f'{sum(v.numel() for v in backbone.values()) / 1e6:.2f}M values '
          f'-> {args.dst}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
