# Copyright (c) OpenMMLab. All rights reserved.
"""Which float kernels a machine's torch runs, as a short key.

Runs are deterministic on one machine, but oneDNN/MKL pick other kernels
(other rounding) on other CPUs, and a toy training that starts an ulp
apart can end points apart (docs/benchmark_toy.md). The key names the
kind of machine a figure or a golden record was made on.
"""
import hashlib

import torch
import torch.nn.functional as F

# The CPU flags oneDNN dispatches on, in the key's order.
_ISA_FLAGS = (('amx', 'amx_tile'), ('fp16', 'avx512_fp16'),
              ('avx512', 'avx512f'), ('avx2', 'avx2'))


def _cpu_flags() -> set:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def kernel_fingerprint() -> str:
    """A short key of this machine's float kernels, e.g.
    ``avx2-9b5bb14ae16a``.

    The CPU's vector extensions that oneDNN dispatches on (AMX, AVX-512
    FP16, AVX-512, AVX2; ``other`` when none is reported) and a hash of one
    thread's convolution, matrix product, norm and softmax results (forward
    and backward) on fixed inputs: two machines with the same key round the
    same way as far as these kernels tell.

    Returns:
        str: ``{isa}-{12 hex digits}``.
    """
    flags = _cpu_flags()
    isa = '-'.join(name
                   for name, flag in _ISA_FLAGS if flag in flags) or 'other'
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 8, 24, 24, generator=gen, requires_grad=True)
        w = torch.randn(16, 8, 3, 3, generator=gen, requires_grad=True)
        lin = torch.randn(32, 16, generator=gen, requires_grad=True)
        y = F.conv2d(x, w, padding=1)
        y = F.batch_norm(y, None, None, training=True)
        t = y.flatten(2).transpose(1, 2) @ lin.t()
        t = F.layer_norm(F.gelu(t), (32, ))
        out = torch.softmax(t, -1).square().sum()
        out.backward()
        digest = hashlib.sha256()
        for v in (out.detach(), x.grad, w.grad, lin.grad):
            digest.update(v.numpy().tobytes())
    finally:
        torch.set_num_threads(threads)
    return f'{isa}-{digest.hexdigest()[:12]}'
