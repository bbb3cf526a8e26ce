# Copyright (c) OpenMMLab. All rights reserved.
"""mmseg_wsss.utils.kernel_fingerprint: the key of a machine's kernels."""
import importlib
import re

import torch

from mmseg_wsss.utils import kernel_fingerprint

# The module (the package's attribute of that name is the function).
fingerprint_module = importlib.import_module(
    'mmseg_wsss.utils.kernel_fingerprint')


def test_key_is_stable_and_leaves_the_threads_alone():
    threads = torch.get_num_threads()
    key = kernel_fingerprint()
    assert re.fullmatch(r'[a-z0-9-]+-[0-9a-f]{12}', key)
    assert kernel_fingerprint() == key  # deterministic on one machine
    assert torch.get_num_threads() == threads


def test_isa_part_follows_the_cpu_flags(monkeypatch):
    digest = kernel_fingerprint().rsplit('-', 1)[1]
    monkeypatch.setattr(fingerprint_module, '_cpu_flags',
                        lambda: {'avx2', 'avx512f', 'sse4_2'})
    assert kernel_fingerprint() == f'avx512-avx2-{digest}'
    monkeypatch.setattr(fingerprint_module, '_cpu_flags', lambda: set())
    assert kernel_fingerprint() == f'other-{digest}'
