# Short name of segformer_mit-b2_8xb2-20k_voc12aug-512x512.py
_base_ = './segformer_mit-b2_8xb2-20k_voc12aug-512x512.py'
