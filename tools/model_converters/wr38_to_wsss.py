# Copyright (c) OpenMMLab. All rights reserved.
"""Convert 1Stage / AffinityNet WideResNet-38 weights to mmseg_wsss keys.

Two inputs are recognised:

1. **ImageNet weights** of the backbone (the code's
   ``ilsvrc-cls_rna-a1_cls1000_ep-0001.pth``, converted from mxnet): keys
   ``conv1a.weight``, ``b2.bn_branch2a.*``, ..., ``b7.conv_branch1.weight``,
   ``bn7.*`` (official_code_notes 4). :class:`WideResNet38` uses the same
   module names, so the keys stay as they are; the converter checks every
   name and shape, drops what the backbone has no use for (a classifier,
   say) and writes a file for the backbone's ``init_cfg``::

       python tools/model_converters/wr38_to_wsss.py \\
           ilsvrc-cls_rna-a1_cls1000_ep-0001.pth \\
           pretrain/wr38_imagenet-wsss.pth

2. **A trained 1Stage model** (``model_enc_e020Xs0.928.pth``, the released
   59.7 / 62.7 model): the backbone keys get ``backbone.``; the decoder keys
   (``aspp.*``, ``fc8_skip.*``, ``fc8_x.*``, ``shallow_mask.*``,
   ``last_conv.*``) are renamed onto :class:`SingleStageHead`; PAMR's fixed
   kernels (``_aff.*``) are dropped. The output is an mmengine checkpoint for
   ``tools/test.py configs/single_stage/single_stage_wr38_voc.py OUT``, so
   the official model can be evaluated (and compared) here.

3. **PSA's VOC-trained classifier** (``res38_cls.pth``, where RRM and ASDT
   start; official_code_notes 5.1): the backbone plus ``fc8.weight``
   (20 x 4096 x 1 x 1, no bias), which becomes the CAM classifier
   ``cls_head.classifier.weight``; written as an mmengine checkpoint for the
   RRM / ASDT configs' ``load_from``::

       python tools/model_converters/wr38_to_wsss.py res38_cls.pth \\
           pretrain/wr38_res38-cls-voc.pth

4. **A trained RRM or ASDT model**: as 3, plus ``fc8_seg_conv1/2`` (the
   segmentation head, ASDT's seg teacher) -> ``decode_head.conv1/2`` and
   ASDT's ``fc8_seg_conv3/4`` (the student) -> ``student_head.conv1/2``,
   for ``tools/test.py configs/rrm/... OUT`` / ``configs/asdt/...``.

The official files are plain state dicts and load weights-only; a file that
needs more is refused unless ``--unsafe-pickle`` is given.
"""
import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from mmseg_wsss.engine.runner.checkpoint import (  # noqa: E402
    UNSAFE_PICKLE_HELP, load_checkpoint_file)

# The backbone layout (official_code_notes 4): (block name, kind,
# (in, mid, out) channels, has a 1x1 projection).
_BASIC = 'basic'
_BOTTLENECK = 'bottleneck'
WR38_BLOCKS: Tuple[Tuple[str, str, Tuple[int, ...], bool], ...] = (
    ('b2', _BASIC, (64, 128, 128), True),
    ('b2_1', _BASIC, (128, 128, 128), False),
    ('b2_2', _BASIC, (128, 128, 128), False),
    ('b3', _BASIC, (128, 256, 256), True),
    ('b3_1', _BASIC, (256, 256, 256), False),
    ('b3_2', _BASIC, (256, 256, 256), False),
    ('b4', _BASIC, (256, 512, 512), True),
    *((f'b4_{i}', _BASIC, (512, 512, 512), False) for i in range(1, 6)),
    ('b5', _BASIC, (512, 512, 1024), True),
    ('b5_1', _BASIC, (1024, 512, 1024), False),
    ('b5_2', _BASIC, (1024, 512, 1024), False),
    ('b6', _BOTTLENECK, (1024, 2048), True),
    ('b7', _BOTTLENECK, (2048, 4096), True),
)
BN_SUFFIXES = ('weight', 'bias', 'running_mean', 'running_var',
               'num_batches_tracked')

# Official decoder key prefixes -> SingleStageHead's (under decode_head.).
DECODER_RENAMES: Tuple[Tuple[str, str], ...] = (
    *((f'aspp.aspp{k}.atrous_conv.', f'aspp.branches.{k - 1}.conv.')
      for k in range(1, 5)),
    *((f'aspp.aspp{k}.bn.', f'aspp.branches.{k - 1}.bn.')
      for k in range(1, 5)),
    ('aspp.global_avg_pool.1.', 'aspp.image_pool.1.conv.'),
    ('aspp.global_avg_pool.2.', 'aspp.image_pool.1.bn.'),
    ('aspp.conv1.', 'aspp.project.conv.'),
    ('aspp.bn1.', 'aspp.project.bn.'),
    ('fc8_skip.0.', 'skip.conv.'),
    ('fc8_skip.1.', 'skip.bn.'),
    ('fc8_x.0.', 'fuse.conv.'),
    ('fc8_x.1.', 'fuse.bn.'),
    ('shallow_mask.fc_deep.0.', 'gci.deep_proj.conv.'),
    ('shallow_mask.fc_deep.1.', 'gci.deep_proj.bn.'),
    ('shallow_mask.fc_skip.0.', 'gci.shallow_proj.conv.'),
    ('shallow_mask.fc_skip.1.', 'gci.shallow_proj.bn.'),
    ('shallow_mask.fc_cls.0.', 'gci.out_proj.conv.'),
    ('shallow_mask.fc_cls.1.', 'gci.out_proj.bn.'),
    ('last_conv.0.', 'decoder.0.conv.'),
    ('last_conv.1.', 'decoder.0.bn.'),
    ('last_conv.4.', 'decoder.2.conv.'),
    ('last_conv.5.', 'decoder.2.bn.'),
    ('last_conv.8.', 'conv_seg.'),
)
# RRM / ASDT (network/RRM.py): classifier and segmentation heads.
RRM_RENAMES: Tuple[Tuple[str, str], ...] = (
    ('fc8.', 'cls_head.classifier.'),
    ('fc8_seg_conv1.', 'decode_head.conv1.'),
    ('fc8_seg_conv2.', 'decode_head.conv2.'),
    ('fc8_seg_conv3.', 'student_head.conv1.'),
    ('fc8_seg_conv4.', 'student_head.conv2.'),
)
# PAMR's constant shift kernels (registered buffers in the code).
DROPPED_PREFIXES = ('_aff.', )


def wr38_key_shapes() -> Dict[str, Tuple[int, ...]]:
    """Every tensor name and shape of the WideResNet-38 backbone.

    Batch norms are listed with their five tensors (``num_batches_tracked``
    included; files saved without it still convert).
    """
    shapes: Dict[str, Tuple[int, ...]] = OrderedDict()

    def bn(name: str, channels: int) -> None:
        for s in BN_SUFFIXES:
            shapes[f'{name}.{s}'] = () if s == 'num_batches_tracked' else (
                channels, )

    shapes['conv1a.weight'] = (64, 3, 3, 3)
    for name, kind, ch, proj in WR38_BLOCKS:
        if kind == _BASIC:
            cin, mid, cout = ch
            bn(f'{name}.bn_branch2a', cin)
            shapes[f'{name}.conv_branch2a.weight'] = (mid, cin, 3, 3)
            bn(f'{name}.bn_branch2b1', mid)
            shapes[f'{name}.conv_branch2b1.weight'] = (cout, mid, 3, 3)
        else:
            cin, cout = ch
            bn(f'{name}.bn_branch2a', cin)
            shapes[f'{name}.conv_branch2a.weight'] = (cout // 4, cin, 1, 1)
            bn(f'{name}.bn_branch2b1', cout // 4)
            shapes[f'{name}.conv_branch2b1.weight'] = (cout // 2, cout // 4, 3,
                                                       3)
            bn(f'{name}.bn_branch2b2', cout // 2)
            shapes[f'{name}.conv_branch2b2.weight'] = (cout, cout // 2, 1, 1)
        if proj:
            shapes[f'{name}.conv_branch1.weight'] = (cout, cin, 1, 1)
    bn('bn7', 4096)
    return shapes


def unwrap_checkpoint(checkpoint: Mapping) -> Mapping:
    """The state dict inside ``{'state_dict': ...}``/``{'model': ...}``,
    without a DataParallel ``module.`` prefix."""
    for key in ('state_dict', 'model'):
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in checkpoint.items())


def _is_backbone_key(key: str) -> bool:
    return re.match(r'^(conv1a|b\d(_\d)?|bn7)\.', key) is not None


def _rename_decoder_key(key: str) -> str:
    for old, new in RRM_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    for old, new in DECODER_RENAMES:
        if key.startswith(old):
            return 'decode_head.' + new + key[len(old):]
    raise KeyError(f'unknown 1Stage decoder parameter "{key}"')


def convert_wr38(state_dict: Mapping[str, torch.Tensor],
                 verbose: bool = True) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Map official WideResNet-38 (or full 1Stage) weights onto ours.

    Args:
        state_dict (Mapping[str, Tensor]): The official weights; a wrapped
            checkpoint is unwrapped.
        verbose (bool): Print what is dropped. Defaults to True.

    Returns:
        tuple: the converted weights, and whether the input was a full
        segmentor (a 1Stage model, PSA's classifier or an RRM / ASDT model:
        the keys carry ``backbone.`` / ``decode_head.`` / ``cls_head.`` /
        ``student_head.`` and load into the segmentor; otherwise they load
        into :class:`WideResNet38` with ``strict=True``).

    Raises:
        KeyError: A backbone tensor is missing, or a key is not understood.
        ValueError: A backbone tensor has the wrong shape.
    """
    state_dict = unwrap_checkpoint(state_dict)
    expected = wr38_key_shapes()
    # A 1Stage model (decoder), PSA's classifier or an RRM / ASDT model
    # (``fc8``, ``fc8_seg_conv*``): keys for a whole segmentor.
    full_model = any(
        k.startswith(('aspp.', 'last_conv.', 'fc8.', 'fc8_seg_conv'))
        for k in state_dict)
    out: Dict[str, torch.Tensor] = OrderedDict()
    dropped: List[str] = []
    for key, value in state_dict.items():
        if _is_backbone_key(key):
            if key not in expected:
                raise KeyError(f'"{key}" is not a WideResNet-38 tensor')
            if tuple(value.shape) != expected[key]:
                raise ValueError(f'{key}: shape {tuple(value.shape)}, '
                                 f'expected {expected[key]}')
            out[('backbone.' if full_model else '') + key] = value
        elif key.startswith(DROPPED_PREFIXES) or not full_model:
            dropped.append(key)  # PAMR kernels; a classifier on ImageNet
        else:
            out[_rename_decoder_key(key)] = value
    prefix = 'backbone.' if full_model else ''
    missing = [
        k for k in expected
        if prefix + k not in out and not k.endswith('num_batches_tracked')
    ]
    if missing:
        raise KeyError(f'missing WideResNet-38 tensors: {missing[:5]}'
                       f'{" ..." if len(missing) > 5 else ""}')
    if verbose and dropped:
        print('wr38_to_wsss: dropped ' + ', '.join(dropped))
    return out, full_model


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        description='Convert WideResNet-38 weights (ImageNet backbone, a '
        'trained 1Stage model, PSA\'s VOC classifier res38_cls.pth, a '
        'trained RRM / ASDT model) to mmseg_wsss keys.')
    parser.add_argument('src', help='official .pth file')
    parser.add_argument('dst', help='output path')
    parser.add_argument(
        '--unsafe-pickle', action='store_true', help=UNSAFE_PICKLE_HELP)
    args = parser.parse_args(argv)
    # The official files are plain state dicts (tensors only).
    checkpoint = load_checkpoint_file(args.src, args.unsafe_pickle)
    weights, full_model = convert_wr38(checkpoint)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    if full_model:
        torch.save(
            dict(state_dict=weights, meta=dict(source=args.src)), args.dst)
    else:
        torch.save(weights, args.dst)
    kind = 'a segmentor' if full_model else 'the backbone'
    print(f'wr38_to_wsss: wrote {len(weights)} tensors of {kind} to '
          f'{args.dst}')


if __name__ == '__main__':
    main()
