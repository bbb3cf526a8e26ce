# Copyright (c) OpenMMLab. All rights reserved.
"""The permutohedral lattice (Adams et al., 2010) in PyTorch, as the dense
CRF of Krähenbühl and Koltun (``densecrf``, which pydensecrf wraps) builds
and uses it: the same elevation, rounding, rank, barycentric weights and
vertex keys, the blur ``v + (n1 + n2) / 2`` along each of the ``d + 1``
axes in order, and the slice scaled by ``1 / (1 + 2^-d)``. Vectorised over
all points (and over several images, whose points never share a lattice
vertex), it runs on the CPU and the GPU alike; no compiled extension.
"""
import warnings
from typing import Optional

import torch
from torch import Tensor


class _Codec:
    """Integer key rows (R, D) as one order-preserving int64 each
    (``sum_c (key_c - lo_c) * mult_c``), for keys within ``margin`` of the
    range of ``keys``; ``ok`` is False when that needs more than 62 bits
    (rows are then compared whole)."""

    def __init__(self, keys: Tensor, margin: int) -> None:
        self.lo = keys.amin(dim=0) - margin
        span = (keys.amax(dim=0) + margin - self.lo + 1).tolist()
        bits = [max(1, int(s - 1).bit_length()) for s in span]
        self.ok = sum(bits) <= 62
        shifts = [sum(bits[c + 1:]) for c in range(len(bits))]
        self.mult = torch.tensor(
            [1 << s for s in shifts] if self.ok else [0] * len(bits),
            dtype=torch.int64,
            device=keys.device)

    def __call__(self, keys: Tensor) -> Tensor:
        return ((keys - self.lo) * self.mult).sum(dim=1)


class PermutohedralLattice:
    """A lattice over N points with d-dimensional features.

    Args:
        features (Tensor): (N, d) point features (position / std, colour /
            std for the dense CRF's bilateral kernel), float32.
        groups (Tensor, optional): (N, ) int64 group (image) of each point;
            points of different groups never interact. Defaults to one
            group.
    """

    def __init__(self,
                 features: Tensor,
                 groups: Optional[Tensor] = None) -> None:
        if features.dim() != 2:
            raise ValueError(f'features must be (N, d), got '
                             f'{tuple(features.shape)}')
        f = features.float()
        N, d = f.shape
        dev = f.device
        self.num_points, self.dim = N, d
        # Diagonal of E (p. 5 of Adams et al.), with the expected std; the
        # code keeps the std as a float and the factors as floats.
        inv_std = float(
            torch.tensor((2.0 / 3.0)**0.5 * (d + 1), dtype=torch.float32))
        i = torch.arange(d, device=dev, dtype=torch.float64)
        scale = (1.0 / torch.sqrt((i + 2) * (i + 1)) * inv_std).float()
        cf = f * scale  # (N, d): cf[:, j - 1] of the code
        # elevated[j] = sum_{k > j} cf_k - j * cf_j (j = 1..d), elevated[0]
        # = sum of all; the code sums from j = d down.
        suffix = torch.flip(torch.cumsum(torch.flip(cf, [1]), dim=1), [1])
        after = torch.cat([suffix[:, 1:], f.new_zeros(N, 1)], dim=1)
        j = torch.arange(1, d + 1, device=dev, dtype=torch.float32)
        elevated = torch.cat([suffix[:, :1], after - j * cf], dim=1)
        # The closest 0-coloured lattice point, by rounding.
        down_factor = torch.tensor(1.0 / (d + 1), dtype=torch.float32)
        v = elevated * down_factor
        up = torch.ceil(v) * (d + 1)
        down = torch.floor(v) * (d + 1)
        rem0 = torch.where(up - elevated < elevated - down, up, down)
        coord_sum = torch.round(rem0 / (d + 1)).sum(dim=1).long()  # (N, )
        # rank: the code's pairwise comparison (ties go to the later one).
        diff = elevated - rem0  # float, as the code's before its compare
        gt = diff[:, None, :] > diff[:, :, None]  # [n, i, j]: d_j > d_i
        ge = diff[:, None, :] >= diff[:, :, None]  # d_j >= d_i
        upper = torch.triu(
            torch.ones(d + 1, d + 1, dtype=torch.bool, device=dev), 1)
        rank = (gt & upper).sum(2) + (ge & upper.T).sum(2)
        rank = rank + coord_sum[:, None]
        low, high = rank < 0, rank > d
        rank = torch.where(low, rank + d + 1,
                           torch.where(high, rank - d - 1, rank))
        rem0 = torch.where(low, rem0 + d + 1,
                           torch.where(high, rem0 - d - 1, rem0))
        # Barycentric coordinates (p. 10).
        vb = (elevated - rem0) * down_factor
        bary = f.new_zeros(N, d + 2)
        bary.scatter_add_(1, d - rank, vb)
        bary.scatter_add_(1, d - rank + 1, -vb)
        bary[:, 0] = (bary[:, 0].double() +
                      (1.0 + bary[:, d + 1].double())).float()
        self.weights = bary[:, :d + 1].contiguous()  # (N, d + 1)
        # The d + 1 vertices of each point's simplex: key_i = rem0_i +
        # canonical[r][rank_i], canonical[r][j] = r if j <= d - r else
        # r - (d + 1); keys have d components (the last is implied).
        r = torch.arange(d + 1, device=dev)
        rem0_l = rem0.round().long()
        canon = torch.where(rank[:, None, :d] <= d - r[None, :, None],
                            r[None, :, None], r[None, :, None] - (d + 1))
        keys = rem0_l[:, None, :d] + canon  # (N, d + 1, d)
        if groups is None:
            groups = torch.zeros(N, dtype=torch.int64, device=dev)
        keys = torch.cat(
            [groups.to(dev).long()[:, None, None].expand(N, d + 1, 1), keys],
            dim=2).reshape(N * (d + 1), d + 1)
        # The hash table: the unique vertices (sorted: a vertex's index is
        # its rank among the keys), neighbours found by binary search.
        codec = _Codec(keys, margin=d + 1)
        if codec.ok:
            uniq, inverse = torch.unique(codec(keys), return_inverse=True)
        else:
            uniq, inverse = torch.unique(keys, dim=0, return_inverse=True)
        self.num_vertices = V = uniq.shape[0]
        # Neighbours along each axis j: n1 = key - 1 with key_j + d, n2 =
        # key + 1 with key_j - d (the group column never changes). With the
        # codec they are the vertex's code plus a constant (the margin
        # keeps every field in range).
        blurs = []
        total = codec.mult[1:].sum()
        for axis in range(d + 1):
            if codec.ok:
                step = total - (d + 1) * codec.mult[1 + axis] \
                    if axis < d else total
                queries = (uniq - step, uniq + step)
            else:
                # uniq holds the vertices' key rows here.
                n1, n2 = uniq.clone(), uniq.clone()
                n1[:, 1:] -= 1
                n2[:, 1:] += 1
                if axis < d:
                    n1[:, 1 + axis] = uniq[:, 1 + axis] + d
                    n2[:, 1 + axis] = uniq[:, 1 + axis] - d
                queries = (n1, n2)
            n1, n2 = (self._find(q, uniq, codec) for q in queries)
            blurs.append(self._blur_matrix(n1, n2))
        # The code's magic scaling constant of the slice.
        self.alpha = 1.0 / (1 + 2.0**(-d))
        # Splat, blur and slice as sparse (CSR) products: splat (V, N)
        # holds each point's d + 1 barycentric weights, slice (N, V) its
        # transpose times alpha. A product reads each point once instead
        # of building an (N, d + 1, K) tensor and scattering it: faster on
        # the CPU (docs/performance.md), and a deterministic cuSPARSE call
        # on the GPU instead of atomic adds.
        vid = inverse.view(N, d + 1)
        self._splat = self._transpose_csr(vid, self.weights, V)
        vid, order = vid.sort(dim=1)  # CSR wants sorted columns in a row
        self._slice = _csr(
            torch.arange(0, N * (d + 1) + 1, d + 1,
                         device=dev), vid.reshape(-1),
            (self.weights.gather(1, order) * self.alpha).reshape(-1), (N, V))
        self._blurs = blurs

    @staticmethod
    def _transpose_csr(vid: Tensor, weights: Tensor, V: int) -> Tensor:
        """The (V, N) CSR matrix with ``weights[n, j]`` at ``(vid[n, j],
        n)``."""
        N = vid.shape[0]
        flat = vid.reshape(-1)
        order = torch.argsort(flat, stable=True)  # by vertex, then point
        points = torch.arange(
            N, device=vid.device).repeat_interleave(vid.shape[1])
        crow = flat.new_zeros(V + 1)
        crow[1:] = torch.cumsum(torch.bincount(flat, minlength=V), 0)
        return _csr(crow, points[order], weights.reshape(-1)[order], (V, N))

    @staticmethod
    def _blur_matrix(n1: Tensor, n2: Tensor) -> Tensor:
        """The (V, V) CSR blur along one axis: ``v + (n1 + n2) / 2`` with
        ``n1``, ``n2`` (V, ) the neighbours' indices (-1 where absent)."""
        V = n1.shape[0]
        own = torch.arange(V, device=n1.device)
        cols = torch.stack([n1, own, n2], dim=1)
        vals = torch.tensor([0.5, 1.0, 0.5], device=n1.device).expand(V, 3)
        present = cols >= 0
        # Absent ones sort last in their row, then drop out.
        cols, order = torch.where(present, cols, V).sort(dim=1)
        present = present.gather(1, order)
        crow = own.new_zeros(V + 1)
        crow[1:] = torch.cumsum(present.sum(dim=1), 0)
        return _csr(crow, cols[present],
                    vals.gather(1, order)[present], (V, V))

    @staticmethod
    def _find(query: Tensor, uniq: Tensor, codec: '_Codec') -> Tensor:
        """Vertex index of each query (a code, or a key row without the
        codec; -1 where absent)."""
        if codec.ok:
            q = query
            pos = torch.searchsorted(uniq, q).clamp(max=uniq.shape[0] - 1)
            return torch.where(uniq[pos] == q, pos, torch.full_like(pos, -1))
        both = torch.cat([uniq, query])
        _, inverse = torch.unique(both, dim=0, return_inverse=True)
        vertex = torch.full((int(inverse.max()) + 1, ),
                            -1,
                            dtype=torch.int64,
                            device=query.device)
        vertex[inverse[:uniq.shape[0]]] = torch.arange(
            uniq.shape[0], device=query.device)
        return vertex[inverse[uniq.shape[0]:]]

    def filter(self, values: Tensor) -> Tensor:
        """Splat, blur and slice: the code's ``compute`` (not reversed).

        Args:
            values (Tensor): (N, K) values of the points.

        Returns:
            Tensor: (N, K) filtered values, in ``values``' dtype.
        """
        mats = [self._splat, *self._blurs, self._slice]
        if values.dtype != self.weights.dtype:
            mats = [m.to(values.dtype) for m in mats]
        out = values.contiguous()
        for m in mats:
            out = m @ out
        return out


def _csr(crow: Tensor, col: Tensor, values: Tensor, size: tuple) -> Tensor:
    """A sparse CSR matrix, built valid by construction (so PyTorch's
    invariant checks are off) and without older PyTorch's warning that CSR
    support is in beta (the products used here are stable)."""
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*[Ss]parse CSR')
        return torch.sparse_csr_tensor(
            crow, col, values, size, check_invariants=False)
