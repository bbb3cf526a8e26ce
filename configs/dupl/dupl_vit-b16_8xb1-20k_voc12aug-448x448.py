# The 8-GPU launch of DuPL on VOC (tools/dist_train.sh CONFIG 8): 8 GPUs x 1
# image = total 8, twice the code's 4. It keeps the code's lr 6e-5, 20k
# iterations and gates and records the code's total (4), so the log warns;
# --auto-scale-lr scales the lr linearly to 1.2e-4. For the exact
# reproduction use dupl_vit-b16_2xb2-20k_voc12aug-448x448.py on 2 GPUs
# (configs/dupl/README.md).
_base_ = ['./dupl_vit-b16_2xb2-20k_voc12aug-448x448.py']
train_dataloader = dict(batch_size=1)
auto_scale_lr = dict(enable=False, base_batch_size=4)
