# Copyright (c) OpenMMLab. All rights reserved.
"""Time one training step of DuPL or ToCo here and in the authors' code.

Both steps run in one process on the same random images and image labels,
alternately (ours, theirs, ours, ...), so a loaded machine slows both
alike; the medians and their ratio are printed. The authors' model and
helpers are imported at run time from a local checkout (``--authors-code``:
a clone of Wu0409/DuPL or rulixiang/ToCo); nothing of it is vendored.
Their training loop body (train_final_voc.py / dist_train_voc_seg_neg.py)
is re-expressed here as calls of their functions in their order, with the
device made a parameter (their loops hard-code ``.cuda()``) and without
DDP, SyncBatchNorm, data loading and logging, which ours skips too.

What the authors' code needs beside this package's environment: timm (any
version that still has ``timm.models.layers``; 0.4.12 is theirs), texttable
and, for DuPL, imageio (``pip install texttable imageio``). ToCo's energy loss
is a compiled SWIG extension (``bilateralfilter``) whose loss calls
``.cuda()``: without ``--energy`` it is left out on both sides
(``model.loss_energy=None`` here), which the output says. With ``--energy``
(GPU only) the extension must be importable (build it as the ToCo README says
and put its build folder on PYTHONPATH).

Examples (the issue's protocol: 2 threads, batch 2, 448 px; DuPL after the
warm-up and before GMM filtering, ToCo after its warm-up)::

    python tools/analysis_tools/benchmark_vs_authors.py dupl \\
        --authors-code /path/to/DuPL --iter 5000 --threads 2
    python tools/analysis_tools/benchmark_vs_authors.py toco \\
        --authors-code /path/to/ToCo --iter 2500 --threads 2
    # GPU, fp32 and mixed precision (ours; the authors' code has no AMP):
    python tools/analysis_tools/benchmark_vs_authors.py dupl \\
        --authors-code /path/to/DuPL --device cuda --batch-size 2 [--amp]
"""
import argparse
import importlib
import os.path as osp
import statistics
import sys
import time
import types
import warnings
from typing import Callable, Dict, List

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmark_train_step import build_train_step  # noqa: E402

# Our config for each method: the authors' VOC recipe (ViT-B/16 from DeiT,
# batch 2 per GPU, 448 px crops).
CONFIGS = {
    'dupl': 'configs/dupl/dupl_vitb_voc.py',
    'toco': 'configs/toco/toco_vitb_voc.py',
}
# The authors' training hyper-parameters (their argparse defaults, the
# published runs; official_code_notes sections 1 and 2).
AUTHORS = dict(
    backbone='deit_base_patch16_224',
    aux_layer=-3,
    num_classes=21,
    lr=6e-5,
    wt_decay=1e-2,
    betas=(0.9, 0.999),
    warmup_iters=1500,
    warmup_lr=1e-6,
    power=0.9,
    max_iters=20000,
    cam_scales=(1.0, 0.5, 1.5),
    high_thre=0.7,
    low_thre=0.25,
    bkg_thre=0.5,
    ignore_index=255,
)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
_AUTHOR_PACKAGES = ('model', 'utils', 'datasets')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Time one training step here and in the authors' code "
        '(same inputs, one run).')
    parser.add_argument('method', choices=sorted(CONFIGS))
    parser.add_argument(
        '--authors-code',
        required=True,
        help='local checkout of Wu0409/DuPL (dupl) or rulixiang/ToCo (toco)')
    parser.add_argument(
        '--config', help='our config (default: the VOC config of METHOD)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--size', type=int, default=448, help='crop size')
    parser.add_argument(
        '--iter',
        type=int,
        help='training iteration of both steps (default: DuPL 5000, after '
        'the warm-up and before GMM filtering; ToCo 2500)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision for our step (the authors train in fp32)')
    parser.add_argument(
        '--energy',
        action='store_true',
        help="keep ToCo's energy loss on both sides (needs the authors' "
        'compiled bilateralfilter and a GPU)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.iter is None:
        args.iter = 5000 if args.method == 'dupl' else 2500
    if args.energy and args.method != 'toco':
        parser.error('--energy applies to toco only (DuPL has no energy '
                     'loss)')
    if args.energy and not args.device.startswith('cuda'):
        parser.error("--energy needs --device cuda (the authors' energy "
                     'loss calls .cuda())')
    return args


def import_authors(path: str, method: str, energy: bool) -> Dict:
    """Import the authors' modules from ``path`` (a clean import: their
    top-level packages ``model``, ``utils`` and ``datasets`` are unloaded
    first, so no other package of that name shadows them)."""
    marker = {
        'dupl': 'model/model_dupl.py',
        'toco': 'model/model_seg_neg.py'
    }[method]
    if not osp.isfile(osp.join(path, marker)):
        raise SystemExit(f'--authors-code {path!r} has no {marker}: give a '
                         f'checkout of the authors\' {method} repository')
    for name in list(sys.modules):
        if name.split('.')[0] in _AUTHOR_PACKAGES:
            del sys.modules[name]
    sys.path.insert(0, osp.abspath(path))
    if method == 'toco' and not energy:
        try:
            importlib.import_module('bilateralfilter')
        except ImportError:
            # model/losses.py imports the SWIG extension at module level;
            # without --energy nothing calls it.
            stub = types.ModuleType('bilateralfilter')

            def _missing(*_args, **_kwargs):
                raise RuntimeError('bilateralfilter is not built')

            stub.bilateralfilter = stub.bilateralfilter_batch = _missing
            sys.modules['bilateralfilter'] = stub
    try:
        # Their backbone re-registers timm's model names: expected here.
        warnings.filterwarnings('ignore', message='Overwriting')
        mods = dict(
            losses=importlib.import_module('model.losses'),
            PAR=importlib.import_module('model.PAR').PAR,
            optimizer=importlib.import_module('utils.optimizer'),
            imutils=importlib.import_module('utils.imutils'))
        if method == 'dupl':
            mods['network'] = importlib.import_module(
                'model.model_dupl').siamese_network
            mods['cam'] = importlib.import_module('utils.cam_helper')
            mods['train_helper'] = importlib.import_module(
                'utils.train_helper')
        else:
            mods['network'] = importlib.import_module(
                'model.model_seg_neg').network
            mods['cam'] = importlib.import_module('utils.camutils')
    except ImportError as err:
        raise SystemExit(
            f"the authors' code could not be imported ({err}); it needs "
            'timm (with timm.models.layers), texttable and, for DuPL, '
            'imageio: pip install them into this environment') from err
    return mods


def authors_inputs(data: Dict, device: str) -> Dict:
    """The authors' view of our random batch: RGB float images normalised
    with ImageNet's mean and std, the labels as a (B, 20) float tensor, the
    whole crop as the image box, and ToCo's three crops from our two extra
    views."""
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    def norm(images: torch.Tensor) -> torch.Tensor:
        # Ours are BGR uint8 (the preprocessor's bgr_to_rgb); theirs RGB.
        return (images.to(device).flip(1).float() - mean) / std

    inputs = norm(torch.stack(data['inputs']))
    samples = data['data_samples']
    cls_label = torch.stack([s.gt_cls_label.data for s in samples]).to(device)
    b, _, h, w = inputs.shape
    img_box = torch.tensor([[0, h, 0, w]] * b, device=device)
    out = dict(inputs=inputs, cls_label=cls_label, img_box=img_box)
    if all(hasattr(s, 'views') for s in samples):
        views = torch.stack([s.views for s in samples])  # B, V, 3, H, W
        out['crops'] = [inputs
                        ] + [norm(views[:, i]) for i in range(views.shape[1])]
    return out


def build_authors_step(method: str, mods: Dict, device: str, n_iter: int,
                       energy: bool) -> Callable[[Dict], Dict]:
    """The authors' model, optimiser and one step of their loop at
    iteration ``n_iter`` (returns the loss items)."""
    a = AUTHORS
    if method == 'dupl':
        model = mods['network'](
            backbone=a['backbone'],
            num_classes=a['num_classes'],
            pretrained=False,
            aux_layer=a['aux_layer'])
    else:
        model = mods['network'](
            backbone=a['backbone'],
            num_classes=a['num_classes'],
            pretrained=False,
            init_momentum=0.9,
            aux_layer=a['aux_layer'])
    groups = model.get_param_groups()
    model.to(device).train()
    optim = mods['optimizer'].PolyWarmupAdamW(
        params=[
            dict(params=groups[0], lr=a['lr'], weight_decay=a['wt_decay']),
            dict(params=groups[1], lr=a['lr'], weight_decay=a['wt_decay']),
            dict(
                params=groups[2], lr=a['lr'] * 10, weight_decay=a['wt_decay']),
            dict(
                params=groups[3], lr=a['lr'] * 10, weight_decay=a['wt_decay']),
        ],
        lr=a['lr'],
        weight_decay=a['wt_decay'],
        betas=a['betas'],
        warmup_iter=a['warmup_iters'],
        max_iter=a['max_iters'],
        warmup_ratio=a['warmup_lr'],
        power=a['power'])
    par = mods['PAR'](num_iter=10, dilations=[1, 2, 4, 8, 12, 24]).to(device)
    step = _dupl_step if method == 'dupl' else _toco_step
    state = dict(model=model, optim=optim, par=par, mods=mods, device=device)
    if method == 'toco':
        losses = mods['losses']
        state['ctc'] = losses.CTCLoss_neg(ncrops=10, temp=0.5).to(device)
        state['energy'] = losses.DenseEnergyLoss(
            weight=1e-7, sigma_rgb=15, sigma_xy=100,
            scale_factor=0.5) if energy else None

    def run(batch: Dict) -> Dict:
        loss, items = step(state, batch, n_iter)
        optim.zero_grad()
        loss.backward()
        optim.step()
        return items

    run.num_params = sum(p.numel() for p in model.parameters()) / 1e6
    return run


def _dupl_step(state: Dict, batch: Dict, n_iter: int):
    """train_final_voc.py's loop body (VOC defaults: w_ptc 0.2, w_seg 0.2,
    discrepancy 0.1, consistency 0.05; CAMs until 2,000, dynamic
    thresholds after, GMM filtering and consistency from 8,000)."""
    a, mods, model = AUTHORS, state['mods'], state['model']
    cam, losses, imutils = mods['cam'], mods['losses'], mods['imutils']
    device = state['device']
    inputs, cls_label, img_box = (batch['inputs'], batch['cls_label'],
                                  batch['img_box'])
    cam_iters, gmm_iters, ign = 2000, 8000, a['ignore_index']
    inputs_denorm = imutils.denormalize_img2(inputs.clone())
    inputs_aug = imutils.augment_data_strong(inputs_denorm.clone(), n=5, m=10)
    cams = [
        cam.multi_scale_cam2_siamese(
            model, inputs=inputs, scales=a['cam_scales'], branch=k)
        for k in (1, 2)
    ]
    use_gmm = n_iter >= cam_iters and n_iter >= gmm_iters
    if use_gmm:
        res = model(torch.cat([inputs, inputs_aug]), need_sp=True)
    else:
        res = model(inputs)
    outs = [res['branch1'], res['branch2']]  # cls, seg, fmap, cls_aux
    cls_loss = sum(
        F.multilabel_soft_margin_loss(o[0], cls_label) +
        F.multilabel_soft_margin_loss(o[3], cls_label) for o in outs)
    if n_iter >= cam_iters:
        high = mods['train_helper'].cosine_descent(
            torch.full((20, ), a['high_thre'], device=device),
            torch.tensor(DUPL_VOC_TARGETS, device=device), n_iter - cam_iters,
            a['max_iters'] - cam_iters)
        b, _, h, w = inputs.shape
        high = torch.stack([
            high[torch.nonzero(cls_label[i]).squeeze(-1)].max()
            for i in range(b)
        ])
        high_mask = high.view(b, 1, 1, 1).expand(b, 1, h, w).contiguous()
    ptc_loss = 0
    for (_, cams_aux), o in zip(cams, outs):
        resized = F.interpolate(
            cams_aux,
            size=o[2].shape[2:],
            mode='bilinear',
            align_corners=False)
        kwargs = dict(
            cls_label=cls_label,
            img_box=img_box,
            ignore_mid=True,
            bkg_thre=a['bkg_thre'],
            low_thre=a['low_thre'],
            ignore_index=ign)
        if n_iter < cam_iters:
            _, label_aux = cam.cam_to_label(
                resized.detach(), high_thre=a['high_thre'], **kwargs)
        else:
            _, label_aux = cam.cam_to_label_dynamic_cls(
                resized.detach(), high_thre=high, **kwargs)
        ptc_loss = ptc_loss + losses.get_masked_ptc_loss(
            o[2], cam.label_to_aff_mask(label_aux))
    seg_loss = reg_loss = torch.zeros((), device=device)
    if n_iter >= cam_iters:
        b, c, h, w = cams[0][0].shape
        rep = cls_label[:, :, None, None].expand(b, c, h, w)
        labels = [
            cam.refine_cams_with_dynamic_thres(
                state['par'],
                inputs_denorm,
                cams=cams_k.detach() * rep,
                cls_labels=cls_label,
                high_thre_map=high_mask,
                low_thre=a['low_thre'],
                ignore_index=ign,
                img_box=img_box).long() for cams_k, _ in cams
        ]
        segs = [
            F.interpolate(
                o[1],
                size=labels[0].shape[1:],
                mode='bilinear',
                align_corners=False) for o in outs
        ]
        if use_gmm:
            seg_loss, reg_loss = _dupl_gmm_and_consistency(
                state, res, segs, labels, inputs_denorm)
        else:
            seg_loss = (
                losses.get_seg_loss(segs[0], labels[1], ignore_index=ign) +
                losses.get_seg_loss(segs[1], labels[0], ignore_index=ign))
    flat = [o[2].flatten(2) for o in outs]
    sim = torch.nn.CosineSimilarity(dim=-1, eps=1e-6)
    sim_loss = (2 + sim(flat[0].detach(), flat[1]).mean() +
                sim(flat[1].detach(), flat[0]).mean())
    if n_iter <= cam_iters:
        loss = cls_loss + 0.2 * ptc_loss + 0.0 * seg_loss + 0.1 * sim_loss
    else:
        loss = (
            cls_loss + 0.2 * ptc_loss + 0.2 * seg_loss + 0.1 * sim_loss +
            (0.05 if n_iter > gmm_iters else 0.0) * reg_loss)
    return loss, dict(
        cls_loss=cls_loss,
        ptc_loss=ptc_loss,
        seg_loss=seg_loss,
        sim_loss=sim_loss,
        reg_loss=reg_loss)


# DuPL's per-class targets of the dynamic threshold (VOC class order).
DUPL_VOC_TARGETS = [
    0.70, 0.70, 0.70, 0.70, 0.55, 0.55, 0.55, 0.55, 0.70, 0.55, 0.55, 0.55,
    0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.70, 0.55
]


def _dupl_gmm_and_consistency(state: Dict, res: Dict, segs: List, labels: List,
                              inputs_denorm: torch.Tensor):
    """DuPL's noise filtering (a two-component GMM per image and student on
    the foreground pixel losses, sklearn as theirs) and the consistency
    loss on the strong view."""
    from sklearn.mixture import GaussianMixture
    a, losses, device = AUTHORS, state['mods']['losses'], state['device']
    ign = a['ignore_index']
    ce = torch.nn.CrossEntropyLoss(ignore_index=ign, reduction='none')
    b, h, w = labels[0].shape
    for k in (0, 1):
        pix = ce(segs[k], labels[k]).detach()
        roi = (labels[k] != 0) & (labels[k] != ign)
        for i in range(b):
            vals = pix[i][roi[i]]
            if (vals > 0.1).sum().item() <= 1000:
                continue
            gmm = GaussianMixture(
                n_components=2,
                max_iter=10,
                tol=1e-2,
                reg_covar=5e-4,
                random_state=0)
            gmm.fit(vals[vals > 0.1].unsqueeze(-1).cpu().numpy())
            if abs(gmm.means_[0, 0] - gmm.means_[1, 0]) > 1.0:
                prob = gmm.predict_proba(pix[i].view(-1, 1).cpu().numpy())
                noise = torch.tensor(
                    prob[:, gmm.means_.argmax()] > 0.95,
                    device=device).reshape(h, w)
                labels[k][i][noise & (labels[k][i] != 0)] = ign
    seg_loss = (
        losses.get_seg_loss(segs[0], labels[1], ignore_index=ign) +
        losses.get_seg_loss(segs[1], labels[0], ignore_index=ign))
    reg_loss = 0
    for k, aug_key in ((0, 'branch1_aug'), (1, 'branch2_aug')):
        aug = F.interpolate(
            torch.flip(res[aug_key], dims=[3]),
            size=inputs_denorm.shape[2:],
            mode='bilinear',
            align_corners=False)
        target = segs[k].detach().max(1)[1]
        conf = torch.softmax(segs[k].detach(), dim=1).max(1)[0]
        uncertain = (labels[1 - k] == ign) & (conf > 0.9)
        target[~uncertain] = ign
        if uncertain.sum() > 0:
            reg_loss = reg_loss + ce(aug, target).sum() / uncertain.sum()
    return seg_loss, reg_loss


def _toco_step(state: Dict, batch: Dict, n_iter: int):
    """dist_train_voc_seg_neg.py's loop body (w_ptc 0.2, w_ctc 0.5, w_seg
    0.1, w_reg 0.05; segmentation and energy terms after 2,000)."""
    a, mods, model = AUTHORS, state['mods'], state['model']
    cam, losses = mods['cam'], mods['losses']
    inputs, cls_label, img_box = (batch['inputs'], batch['cls_label'],
                                  batch['img_box'])
    crops, ign = batch['crops'], a['ignore_index']
    inputs_denorm = mods['imutils'].denormalize_img2(inputs.clone())
    cams, cams_aux = cam.multi_scale_cam2(
        model, inputs=inputs, scales=a['cam_scales'])
    roi_mask = cam.cam_to_roi_mask2(
        cams_aux.detach(),
        cls_label=cls_label,
        low_thre=a['low_thre'],
        hig_thre=a['high_thre'])
    local_crops, flags = cam.crop_from_roi_neg(
        images=crops[2], roi_mask=roi_mask, crop_num=8, crop_size=96)
    cls, segs, fmap, cls_aux, out_t, out_s = model(
        inputs, crops=crops[:2] + local_crops, n_iter=n_iter)
    cls_loss = F.multilabel_soft_margin_loss(cls, cls_label)
    cls_loss_aux = F.multilabel_soft_margin_loss(cls_aux, cls_label)
    ctc_loss = state['ctc'](out_s, out_t, flags)
    thr = dict(
        bkg_thre=a['bkg_thre'],
        high_thre=a['high_thre'],
        low_thre=a['low_thre'],
        ignore_index=ign)
    valid_cam, _ = cam.cam_to_label(
        cams.detach(),
        cls_label=cls_label,
        img_box=img_box,
        ignore_mid=True,
        **thr)
    label = cam.refine_cams_with_bkg_v2(
        state['par'],
        inputs_denorm,
        cams=valid_cam,
        cls_labels=cls_label,
        high_thre=a['high_thre'],
        low_thre=a['low_thre'],
        ignore_index=ign,
        img_box=img_box).long()
    segs = F.interpolate(
        segs, size=label.shape[1:], mode='bilinear', align_corners=False)
    seg_loss = losses.get_seg_loss(segs, label, ignore_index=ign)
    reg_loss = torch.zeros((), device=state['device'])
    if state['energy'] is not None:
        reg_loss = losses.get_energy_loss(
            img=inputs,
            logit=segs,
            label=label,
            img_box=img_box,
            loss_layer=state['energy'])
    resized = F.interpolate(
        cams_aux, size=fmap.shape[2:], mode='bilinear', align_corners=False)
    _, label_aux = cam.cam_to_label(
        resized.detach(),
        cls_label=cls_label,
        img_box=img_box,
        ignore_mid=True,
        **thr)
    ptc_loss = losses.get_masked_ptc_loss(fmap,
                                          cam.label_to_aff_mask(label_aux))
    on = 0.0 if n_iter <= 2000 else 1.0
    loss = (
        cls_loss + cls_loss_aux + 0.2 * ptc_loss + 0.5 * ctc_loss +
        on * 0.1 * seg_loss + on * 0.05 * reg_loss)
    return loss, dict(
        cls_loss=cls_loss,
        cls_loss_aux=cls_loss_aux,
        ptc_loss=ptc_loss,
        ctc_loss=ctc_loss,
        seg_loss=seg_loss,
        reg_loss=reg_loss)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = args.config or CONFIGS[args.method]
    options = None
    if args.method == 'toco' and not args.energy:
        options = {'model.loss_energy': None}
    # The authors' checkout first: a wrong path fails before any building.
    mods = import_authors(args.authors_code, args.method, args.energy)
    ours, data = build_train_step(
        config,
        batch_size=args.batch_size,
        size=args.size,
        device=args.device,
        amp=args.amp,
        seed=args.seed,
        cfg_options=options)
    torch.manual_seed(args.seed)
    theirs = build_authors_step(args.method, mods, args.device, args.iter,
                                args.energy)
    batch = authors_inputs(data, args.device)
    cuda = args.device.startswith('cuda')

    def timed(fn, *fn_args):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        items = fn(*fn_args)
        if cuda:
            torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        return time.perf_counter() - start, items, peak

    times = dict(ours=[], authors=[])
    peaks = dict(ours=0.0, authors=0.0)
    items = {}
    for step in range(args.warmup + args.repeat):
        for side, fn, fn_args in (('ours', ours, (args.iter + step, )),
                                  ('authors', theirs, (batch, ))):
            t, items[side], peak = timed(fn, *fn_args)
            if step >= args.warmup:
                times[side].append(t)
                peaks[side] = max(peaks[side], peak or 0.0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'{args.method}: batch {args.batch_size} x {args.size}^2, '
          f'iteration {args.iter}, {args.device}' +
          (f' ({args.threads} threads)' if not cuda else '') +
          (', ours with AMP' if args.amp else ', fp32') +
          ('' if args.method == 'dupl' or args.energy else
           ', energy loss left out on both sides'))
    print(f'ours ({config}, {ours.num_params:.2f}M parameters): ' +
          ', '.join(f'{t:.3f}' for t in times['ours']) +
          f' s; median {med["ours"]:.3f} s' +
          (f'; peak GPU memory {peaks["ours"]:.2f} GiB' if cuda else ''))
    print(f"authors' ({args.authors_code}, {theirs.num_params:.2f}M "
          'parameters): ' + ', '.join(f'{t:.3f}' for t in times['authors']) +
          f' s; median {med["authors"]:.3f} s' +
          (f'; peak GPU memory {peaks["authors"]:.2f} GiB' if cuda else ''))
    print(f'speed-up (authors / ours): {med["authors"] / med["ours"]:.2f}x')
    for side in ('ours', 'authors'):
        print(f'{side} losses: ' +
              ', '.join(f'{k} {float(torch.as_tensor(v).detach()):.4f}'
                        for k, v in items[side].items()))


if __name__ == '__main__':
    main()
