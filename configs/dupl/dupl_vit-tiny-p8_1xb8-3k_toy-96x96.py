# DuPL on the toy dataset: two toy ToCo students (configs/toco, tiny ViT
# with 8x8 patches, from scratch). Toy scaling rule (configs/dupl/README.md):
# gates keep their VOC proportions of max_iters (segmentation at 10%,
# filtering at 40%), the GMM pixel minimum is the same fraction of the crop
# (1,000 of 448 x 448 -> 46 of 96 x 96), a uniform threshold target of 0.55,
# pixel-measured settings scaled by 96/448 (inherited from the ToCo toy).
# Batch 8, not the ToCo toy's 16: two students see each image, so a DuPL step
# at 8 costs about what a ToCo step at 16 does (the same compute per
# iteration; 3,000 iterations fit a CPU session). Same lr (AdamW 1e-3).
_base_ = ['../toco/toco-noctc_vit-tiny-p8_1xb16-3k_toy-96x96.py']
max_iters = 3000
train_dataloader = dict(batch_size=8)
auto_scale_lr = dict(enable=False, base_batch_size=8)
model = dict(
    _delete_=True,
    type='DuPLSegmentor',
    data_preprocessor={{_base_.model.data_preprocessor}},
    network={{_base_.model.network}},
    loss_ptc={{_base_.model.loss_ptc}},
    loss_seg=dict(type='BgFgSegLoss', loss_weight=0.2),
    loss_dis=dict(type='DiscrepancyLoss', mode='code', loss_weight=0.1),
    loss_consistency=dict(
        type='ConsistencyLoss', conf_thr=0.9, loss_weight=0.05),
    train_cfg=dict(
        # The toy ToCo's CAM scales, low threshold and PAR dilations.
        cam_scales={{_base_.model.train_cfg.cam_scales}},
        low_thr={{_base_.model.train_cfg.low_thr}},
        par={{_base_.model.train_cfg.par}},
        gate_rule='after',  # as VOC: on when n_iter > start
        dis_start_iter=None,
        ptc_start_iter=None,
        seg_start_iter=300,  # 10% (VOC: 2,000 of 20,000)
        filter_start_iter=1200,  # 40% (VOC: 8,000 of 20,000), from 1,200
        consistency_start_iter=1200,  # on from 1,201
        dynamic_thr=dict(
            enable=True,
            # VOC's start 0.7 and the toy's uniform target 0.55, halved as
            # the ToCo toy's thresholds (configs/toco/README.md).
            start=0.35,
            target=0.275,
            max_iters=max_iters,
            warmup_iters=300,
            origin='code'),
        noise_filter=dict(
            backend='torch',  # batched EM: one call per batch of 16
            ce_thr=0.1,
            min_pixels=46,  # 1,000 x (96 x 96) / (448 x 448)
            mean_gap=1.0,
            gamma=0.95),
        strong_view=dict(num_ops=5, magnitude=10, scale=0.75),
        consistency_target='code'),
    test_cfg={{_base_.model.test_cfg}})
val_evaluator = dict(type='MultiBranchIoUMetric', iou_metrics=['mIoU'])
custom_hooks = [
    dict(type='TotalBatchInfoHook'),
    dict(type='BestBranchHook'),
]
