"""What every evidence recipe shares, whatever its data: batch 8, AdamW with one learning rate, cosine with
5% warm-up, evaluation once at the end, the last checkpoint kept. Each recipe adds its data, its model, its
learning rate and its length (iterations are equal at every factor of a grid)."""

from .optim import AdamW as optimizer
from .schedule import cosine as lr_multiplier
from .train import train

optimizer.weight_decay = 1e-4
optimizer.params.lr_factor_func = None

lr_multiplier.warmup_length = 0.05

train.eval_period = 0
train.log_period = 50
train.checkpointer.max_to_keep = 1
