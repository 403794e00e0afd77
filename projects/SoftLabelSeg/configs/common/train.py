"""Training-loop settings shared by every recipe: the schema's defaults (``softlabelseg.engine.train_config``
lists every ``train.*`` key with its type and meaning; docs/training.md shows the table).

``device`` is decided when the recipe loads ("cuda" when CUDA is available, else "cpu": a real device
string, as detectron2's tools need); override with ``train.device=cpu`` (the project's engine also takes
"auto").
"""

import torch
from softlabelseg.engine.train_config import train_defaults

train = train_defaults(device="cuda" if torch.cuda.is_available() else "cpu")
