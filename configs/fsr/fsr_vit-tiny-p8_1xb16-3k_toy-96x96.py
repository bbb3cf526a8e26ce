# FSR on the toy dataset: the toy ToCo network (tiny ViT, 8x8 patches,
# the same toy-pretrained start, batch 16, 3,000 iterations, seed and
# last-checkpoint protocol as configs/toco) with FSR's parts. Toy scaling
# (configs/fsr/README.md): iteration counts keep their share of max_iters
# (segmentation gate 10 %, random masking 20 %, temperature warm-up 12.5 %,
# the teacher's averaging horizon 1 / (1 - m) 10 %: m 0.9995 -> 0.99667);
# thresholds are VOC's halved as in the ToCo toy (labels 0.35 / 0.125,
# uncertain blocks (0.1, 0.35)); pixel sizes x 96/448 (blocks of 2x2 patches,
# 16 px for FSR's 64); the projector 128 -> 512 -> 512 -> 256 -> 1024.
_base_ = ['../toco/toco-noctc_vit-tiny-p8_1xb16-3k_toy-96x96.py']
num_classes = 10
max_iters = 3000
crop_size = (96, 96)
model = dict(
    _delete_=True,
    type='FSRSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    network=dict(
        type='ToCoNetwork',
        backbone=dict(
            type='WSSSViT',
            img_size=(96, 96),
            patch_size=8,
            embed_dims=128,
            num_layers=4,
            num_heads=4,
            aux_layer=-2,
            drop_path_rate=0.1,
            freeze_pos_embed=False,
            with_mask_token=True,
            cls_token_from_aggregation=True,
            aggregation_depth=2,
            aggregation_mask='none',
            init_cfg=dict(
                type='Pretrained',
                checkpoint='pretrain/vit-tiny-p8_toy-pretrain.pth')),
        cls_head={{_base_.model.network.cls_head}},
        aux_cls_head={{_base_.model.network.aux_cls_head}},
        decode_head=dict(
            type='LargeFOVHead',
            in_channels=128,
            channels=256,
            dilation=5,
            num_classes=num_classes,
            in_index=0,
            init='kaiming'),
        proj_head=dict(
            type='DINOHead',
            in_dim=128,
            out_dim=1024,
            hidden_dim=512,
            bottleneck_dim=256)),
    loss_fsr_class=dict(
        type='FSRClassLoss', out_dim=1024, temp_warmup_iters=max_iters // 8),
    loss_fsr_patch=dict(
        type='FSRPatchLoss', out_dim=1024, temp_warmup_iters=max_iters // 8),
    loss_ptc={{_base_.model.loss_ptc}},
    loss_seg={{_base_.model.loss_seg}},
    loss_energy={{_base_.model.loss_energy}},
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5),
        high_thr=0.35,
        low_thr=0.125,
        seg_start_iter=300,
        gate_rule='from',
        fsr_iters=max_iters,
        masking=dict(
            form='code',
            mask_ratio=0.4,
            low_thr=0.1,
            high_thr=0.35,
            block_size=2,
            random_iters=max_iters // 5),
        teacher=dict(momentum=0.99667, end_momentum=1.0, schedule='cosine'),
        par={{_base_.model.train_cfg.par}}),
    test_cfg=dict(
        output='seg',
        network='student',
        scales=(1.0, 1.25, 1.5),
        flip=True,
        bkg_thr=0.5,
        crf=dict(preset='toco', xy_scale=96 / 448, prob_mode='softmax')))
fsr_view = [
    dict(
        type='RandomResizedCrop',
        size=crop_size,
        scale=(0.32, 1.0),
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='ToCoPhotometricAug', jitter_prob=0.5, gray_prob=0., blur_prob=0.)
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AddView', transforms=fsr_view),
    *fsr_view,
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# FSR's weight decay (0.05; none on biases, 1-D parameters, position
# embedding, class and mask tokens); the toy lr 1e-3 for every group as in
# the ToCo toy (no x10 groups); warm-up from 0.1 lr over 7.5 %, then cosine.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.05),
    constructor='PretrainedNewOptimWrapperConstructor',
    paramwise_cfg=dict(
        new_prefixes=('network.decode_head', 'network.proj_head',
                      'network.cls_head', 'network.aux_cls_head'),
        lr_mult=(1., 1., 1., 1.),
        decay_mult=(1., 0., 1., 0.),
        flat_no_decay=True,
        no_decay_keys=('pos_embed', 'cls_token', 'mask_token')),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=225),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters - 225,
        eta_min=0.,
        by_epoch=False,
        begin=225,
        end=max_iters),
]
