# COCO-Stuff 10K restricted to the 20 PASCAL VOC classes (ASDT, TIP 2023,
# Table 2, "following EDAM"): every other class is background, unlabelled
# pixels are ignored (255). Train on imageLists/train.txt (9,000), evaluate
# on imageLists/test.txt (1,000, here val.txt = test.txt). Prepare with
# tools/dataset_converters/cocostuff10k.py (docs/datasets.md).
# Images without any VOC class (kept by the converter, with an empty label
# list) are dropped when the datasets are built (empty_label_policy='skip',
# the count is logged): a WSSS sample needs a positive class. The
# evaluation then covers the test images with at least one VOC class; to
# score all 1,000, set the test dataset's cls_label_file=None (for
# predictions that read no image label: RRM's / ASDT's segmentation output,
# CAMs with test_cfg.cls_source='pred').
# RRM's / ASDT's VOC data settings (voc12aug_rrm-321x321.py) on another
# folder and split lists.
_base_ = './voc12aug_rrm-321x321.py'
data_root = 'data/cocostuff10k_voc20'
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        empty_label_policy='skip'))  # images without a VOC class
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        empty_label_policy='skip'))
test_dataloader = val_dataloader
