# Short name of dupl_vit-b16_8xb1-20k_voc12aug-448x448.py (the 8-GPU launch:
# tools/dist_train.sh configs/dupl/dupl_vitb_voc.py 8).
_base_ = ['./dupl_vit-b16_8xb1-20k_voc12aug-448x448.py']
