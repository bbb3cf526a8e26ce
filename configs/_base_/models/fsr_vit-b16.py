# FSR (AAAI 2024) network and losses (official_code_notes 3): ToCo's network
# and losses (toco_vit-b16.py) with FSR's ViT-B/16 (class token from 2
# cross-attention blocks, learnable mask token, trained position embeddings
# at 28x28, drop path 0.1), a DINO projector on all tokens (768 -> 2048 ->
# 2048 -> 256 -> weight-normed 4096) and an EMA teacher of the whole network.
_base_ = ['./toco_vit-b16.py']
model = dict(
    type='FSRSegmentor',
    network=dict(
        backbone=dict(
            # Position embeddings resized from 14x14 to 28x28 at load, then
            # trained (FSR's img_size=448).
            img_size=(448, 448),
            drop_path_rate=0.1,
            freeze_pos_embed=False,
            with_mask_token=True,
            cls_token_from_aggregation=True,
            aggregation_depth=2,
            # The released code: the class token attends to every patch
            # token, masked ones included ('exclude': the paper's masked
            # cross-attention).
            aggregation_mask='none',
            init_cfg=dict(checkpoint='pretrain/jx_vit_base_p16_224-wsss.pth')),
        decode_head=dict(init='kaiming'),  # FSR calls its init (ToCo not)
        proj_head=dict(type='DINOHead', in_dim=768, out_dim=4096)),
    # Student temperature 0.1, teacher 0.04 -> 0.07 over max_iters / 8
    # (VOC: 20,000 / 8), centre momentum 0.9; weights 0.1 and 0.1.
    loss_fsr_class=dict(
        type='FSRClassLoss', out_dim=4096, temp_warmup_iters=2500),
    loss_fsr_patch=dict(
        type='FSRPatchLoss', out_dim=4096, temp_warmup_iters=2500),
    train_cfg=dict(
        # `(n_iter + 1) <= 2000`: seg and energy on from iteration 2,000.
        seg_start_iter=2000,
        gate_rule='from',
        fsr_iters=20000,  # = max_iters
        # 64 px blocks (4x4 patches), 40 % of them; random for max_iters / 5.
        masking=dict(
            form='code',
            mask_ratio=0.4,
            low_thr=0.2,
            high_thr=0.7,
            block_size=4,
            random_iters=4000),
        # The code's teacher: the whole student, m cosine 0.9995 -> 1.0.
        # The paper's: dict(momentum=0.996, param_groups={'backbone.':
        # dict(momentum=0., schedule='constant')}).
        teacher=dict(momentum=0.9995, end_momentum=1.0, schedule='cosine')),
    test_cfg=dict(network='student'))
