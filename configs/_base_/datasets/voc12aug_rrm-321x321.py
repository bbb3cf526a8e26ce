# PASCAL VOC 2012 + SBD with RRM's / ASDT's training augmentation
# (official_code_notes 5.1): a random rescale U(0.7, 1.3) of the image's own
# size, horizontal flip, a 321 x 321 crop with padding (the valid box kept
# for the energy loss), batch 4. The code draws one scale per batch and pads
# the normalised image with 0 (the mean colour); here each image draws its
# own and the padding is black before normalisation (README).
_base_ = './voc12aug_448x448.py'
crop_size = (321, 321)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.7, 1.3)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropWithBox', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
