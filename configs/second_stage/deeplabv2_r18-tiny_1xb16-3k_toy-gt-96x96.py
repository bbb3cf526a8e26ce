# The "oracle" of the toy second stage: the same model, pipeline and
# schedule (deeplabv2_r18-tiny_1xb16-3k_toy-96x96.py) trained on the TRUE
# training masks (SegmentationClass), no pseudo labels: an upper bound, and
# the gap to it measures what the pseudo labels cost. Fully supervised: not
# a WSSS result.
_base_ = './deeplabv2_r18-tiny_1xb16-3k_toy-96x96.py'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='WSSSCustomDataset',
        data_root='data/toy',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        check_images=True,
        pipeline={{_base_.train_pipeline}}))
