# Copyright (c) OpenMMLab. All rights reserved.
"""tools/model_converters/wr38_to_wsss.py: the public WideResNet-38 key
names (official_code_notes 4) land on WideResNet38 / SingleStageSegmentor."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from conftest import REPO_ROOT
from mmseg_wsss.registry import MODELS

pytestmark = pytest.mark.usefixtures('one_thread')

TOOL = osp.join(REPO_ROOT, 'tools', 'model_converters', 'wr38_to_wsss.py')
_spec = importlib.util.spec_from_file_location('wr38_to_wsss', TOOL)
wr38 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wr38)


def public_wr38_state_dict():
    """The ImageNet file's names and shapes, written out from the notes:
    conv1a 3x3 3->64; basic blocks (bn_branch2a, conv_branch2a 3x3,
    bn_branch2b1, conv_branch2b1 3x3, conv_branch1 1x1 where the shape
    changes); bottlenecks b6 1024->2048 and b7 2048->4096 (bn_branch2a,
    conv_branch2a 1x1 to out/4, bn_branch2b1, conv_branch2b1 3x3 to out/2,
    bn_branch2b2, conv_branch2b2 1x1, conv_branch1); bn7. Random values."""
    g = torch.Generator().manual_seed(0)
    sd = {}

    def conv(name, cout, cin, k):
        sd[name + '.weight'] = torch.randn(cout, cin, k, k, generator=g)

    def bn(name, c):
        for s in ('weight', 'bias', 'running_mean', 'running_var'):
            sd[f'{name}.{s}'] = torch.rand(c, generator=g) + 0.5
        sd[name + '.num_batches_tracked'] = torch.tensor(7)

    conv('conv1a', 64, 3, 3)
    basic = [('b2', 64, 128, 128)] + [(f'b2_{i}', 128, 128, 128)
                                      for i in (1, 2)]
    basic += [('b3', 128, 256, 256)] + [(f'b3_{i}', 256, 256, 256)
                                        for i in (1, 2)]
    basic += [('b4', 256, 512, 512)] + [(f'b4_{i}', 512, 512, 512)
                                        for i in range(1, 6)]
    basic += [('b5', 512, 512, 1024)] + [(f'b5_{i}', 1024, 512, 1024)
                                         for i in (1, 2)]
    for name, cin, mid, cout in basic:
        bn(f'{name}.bn_branch2a', cin)
        conv(f'{name}.conv_branch2a', mid, cin, 3)
        bn(f'{name}.bn_branch2b1', mid)
        conv(f'{name}.conv_branch2b1', cout, mid, 3)
        if '_' not in name:
            conv(f'{name}.conv_branch1', cout, cin, 1)
    for name, cin, cout in (('b6', 1024, 2048), ('b7', 2048, 4096)):
        bn(f'{name}.bn_branch2a', cin)
        conv(f'{name}.conv_branch2a', cout // 4, cin, 1)
        bn(f'{name}.bn_branch2b1', cout // 4)
        conv(f'{name}.conv_branch2b1', cout // 2, cout // 4, 3)
        bn(f'{name}.bn_branch2b2', cout // 2)
        conv(f'{name}.conv_branch2b2', cout, cout // 2, 1)
        conv(f'{name}.conv_branch1', cout, cin, 1)
    bn('bn7', 4096)
    return sd


def test_public_names_match_the_notes():
    sd = public_wr38_state_dict()
    assert len(sd) == 228
    assert sum(v.numel() for k, v in sd.items()
               if 'running' not in k and 'num_batches' not in k) == 105070912
    shapes = wr38.wr38_key_shapes()
    assert {k: tuple(v.shape) for k, v in sd.items()} == shapes


def test_imagenet_weights_land_on_the_backbone():
    sd = public_wr38_state_dict()
    sd['fc1000.weight'] = torch.zeros(1000, 4096)  # a classifier: dropped
    out, full = wr38.convert_wr38({'state_dict': sd}, verbose=False)
    assert not full and 'fc1000.weight' not in out
    bb = MODELS.build(dict(type='WideResNet38'))
    bb.load_state_dict(out, strict=True)
    own = bb.state_dict()
    for k, v in sd.items():
        if k != 'fc1000.weight':
            assert torch.equal(own[k], v), k
    # A DataParallel prefix is stripped; a wrong shape or a missing tensor
    # is an error, not a silent partial load.
    out2, _ = wr38.convert_wr38({
        'module.' + k: v
        for k, v in sd.items()
    },
                                verbose=False)
    assert out2.keys() == out.keys()
    bad = dict(sd, **{'b3.conv_branch1.weight': torch.zeros(1)})
    with pytest.raises(ValueError):
        wr38.convert_wr38(bad, verbose=False)
    with pytest.raises(KeyError):
        wr38.convert_wr38({
            k: v
            for k, v in sd.items() if k != 'bn7.weight'
        },
                          verbose=False)


def _official_decoder_state_dict(model_sd):
    """Our decode-head tensors under the code's SoftMaxAE names."""
    inverse = {new: old for old, new in wr38.DECODER_RENAMES}
    out = {}
    for key, value in model_sd.items():
        if not key.startswith('decode_head.'):
            continue
        rest = key[len('decode_head.'):]
        for new, old in inverse.items():
            if rest.startswith(new):
                out[old + rest[len(new):]] = torch.randn_like(
                    value.float()).to(value.dtype)
                break
        else:
            raise AssertionError(f'no official name for {key}')
    return out


def test_full_1stage_model_lands_on_the_segmentor():
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'single_stage',
                 'single_stage_wr38_voc.py'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    official = public_wr38_state_dict()
    official.update(_official_decoder_state_dict(model.state_dict()))
    official['_aff.aff_x.kernel'] = torch.zeros(8, 1, 3, 3)  # PAMR buffer
    out, full = wr38.convert_wr38(official, verbose=False)
    assert full
    missing, unexpected = model.load_state_dict(out, strict=False)
    assert not unexpected and not missing
    sd = model.state_dict()
    assert torch.equal(sd['decode_head.conv_seg.weight'],
                       official['last_conv.8.weight'])
    assert torch.equal(sd['decode_head.gci.shallow_proj.bn.running_var'],
                       official['shallow_mask.fc_skip.1.running_var'])
    assert torch.equal(sd['backbone.b7.conv_branch1.weight'],
                       official['b7.conv_branch1.weight'])


@pytest.mark.parametrize('kind', ['psa_classifier', 'asdt'])
def test_psa_classifier_and_asdt_model_land_on_the_segmentor(kind):
    """PSA's res38_cls.pth (backbone + fc8, RRM's start) and a released
    ASDT model (+ fc8_seg_conv1-4: seg teacher and student)."""
    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'asdt', 'asdt_wr38_voc.py'))
    model = MODELS.build(cfg.model)
    official = public_wr38_state_dict()
    gen = torch.Generator().manual_seed(0)
    official['fc8.weight'] = torch.randn(20, 4096, 1, 1, generator=gen)
    if kind == 'asdt':
        for i, (cin, cout) in enumerate([(4096, 512), (512, 21)] * 2, 1):
            official[f'fc8_seg_conv{i}.weight'] = torch.randn(
                cout, cin, 3, 3, generator=gen)
            official[f'fc8_seg_conv{i}.bias'] = torch.randn(
                cout, generator=gen)
    out, full = wr38.convert_wr38(official, verbose=False)
    assert full
    missing, unexpected = model.load_state_dict(out, strict=False)
    assert not unexpected
    heads = ('decode_head.', 'student_head.')
    if kind == 'asdt':
        assert not missing
        assert torch.equal(model.student_head.conv2.bias,
                           official['fc8_seg_conv4.bias'])
        assert torch.equal(model.decode_head.conv1.weight,
                           official['fc8_seg_conv1.weight'])
    else:  # the heads start from their init
        assert missing and all(k.startswith(heads) for k in missing)
    assert torch.equal(model.cls_head.classifier.weight,
                       official['fc8.weight'])
    assert torch.equal(model.backbone.conv1a.weight, official['conv1a.weight'])


def test_command_line(tmp_path):
    src, dst = tmp_path / 'in.pth', tmp_path / 'out' / 'wr38.pth'
    torch.save(public_wr38_state_dict(), src)
    subprocess.run([sys.executable, TOOL,
                    str(src), str(dst)],
                   check=True,
                   capture_output=True)
    out = torch.load(dst, weights_only=True)
    assert len(out) == 228 and 'conv1a.weight' in out
