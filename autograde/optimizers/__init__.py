"""Assignment `optimizers`: torch.optim's RMSprop, Adam and AdamW and the learning-rate schedules
StepLR and CosineAnnealingLR, in numpy.

Notebook use: ``from autograde.optimizers import check, validate`` then ``check("adam")``.
"""
from .. import lazy_check

CHAPTER = "adaptive_optimizers"  # its chapter, book/adaptive_optimizers.md (the problem-sets page links it)

__getattr__ = lazy_check("optimizers")  # check and validate, on first use
