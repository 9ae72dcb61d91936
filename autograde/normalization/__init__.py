"""Assignment `normalization`: layer normalization and spatial group normalization in numpy
(forward and backward), and a torch ``GroupNorm`` module from basic tensor operations
(Ba, Kiros & Hinton, 2016; Wu & He, 2018).

Notebook use: ``from autograde.normalization import check, validate`` then ``check("layernorm_forward")``.
"""
from .. import lazy_check

__getattr__ = lazy_check("normalization")  # check and validate, on first use
