# The toy stand-in for DeiT-B's ImageNet pretraining: the tiny ViT trained
# from scratch with image labels (GMP + multi-label soft margin) on a toy set
# generated with another seed (8,000 images, seed 100), never on the toy
# train/val images. tools/pretrain_toy_vit.sh runs it and extracts the
# backbone to pretrain/vit-tiny-p8_toy-pretrain.pth, the init_cfg of the
# toy CAM-ViT, ToCo and DuPL configs.
_base_ = ['./cam_vit-tiny-p8_1xb16-3k_toy-96x96.py']
data_root = 'data/toy_pretrain'
model = dict(
    backbone=dict(
        freeze_pos_embed=False,  # from scratch: nothing pretrained to keep
        init_cfg=None))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
