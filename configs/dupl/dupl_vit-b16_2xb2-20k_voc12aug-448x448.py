# DuPL (CVPR 2024) on VOC, exactly as the code ran it: 2 GPUs x 2 images
# (total 4), lr 6e-5, 20k iterations (tools/dist_train.sh CONFIG 2).
# Each student is ToCo's network (configs/toco), built twice from the same
# pretrained weights, trained with ToCo's PTC and PAR labels; every gate and
# threshold is DuPL's own train_cfg below.
_base_ = ['../toco/toco-noctc_vit-b16_2xb2-20k_voc12aug-448x448.py']
max_iters = 20000
# The code's per-class targets of the dynamic threshold, VOC class order
# (aeroplane ... tvmonitor).
voc_thr_targets = [
    0.70, 0.70, 0.70, 0.70, 0.55, 0.55, 0.55, 0.55, 0.70, 0.55, 0.55, 0.55,
    0.55, 0.55, 0.55, 0.55, 0.55, 0.55, 0.70, 0.55
]
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
        cam_scales={{_base_.model.train_cfg.cam_scales}},
        low_thr={{_base_.model.train_cfg.low_thr}},
        par={{_base_.model.train_cfg.par}},
        # The code's gates (0-based n_iter; gate_rule 'after': on when
        # n_iter > start): discrepancy and PTC ungated, cross segmentation
        # from 2,001 (cam_iters), noise filtering from 8,000 itself (gmm_iters,
        # compared n_iter >= start), the consistency loss from 8,001.
        gate_rule='after',
        dis_start_iter=None,
        ptc_start_iter=None,
        seg_start_iter=2000,
        filter_start_iter=8000,
        consistency_start_iter=8000,
        dynamic_thr=dict(
            enable=True,
            start=0.7,
            target=voc_thr_targets,
            max_iters=max_iters,
            warmup_iters=2000,
            origin='code'),
        noise_filter=dict(
            backend='sklearn',  # 'torch': batched EM on the model's device
            ce_thr=0.1,
            min_pixels=1000,
            mean_gap=1.0,
            gamma=0.95),
        strong_view=dict(num_ops=5, magnitude=10, scale=0.75),
        consistency_target='code'),
    # ToCo's inference for each student; test_cfg.branch defaults to
    # 'best' (the student that validated better), or set 1 / 2.
    test_cfg={{_base_.model.test_cfg}})
# Both students are validated (logged per student). Testing uses
# test_cfg.branch (label-free by default); the last checkpoint is the result.
val_evaluator = dict(type='MultiBranchIoUMetric', iou_metrics=['mIoU'])
custom_hooks = [
    dict(type='TotalBatchInfoHook'),
    dict(type='BestBranchHook'),
]
