"""ONNX export, verification and runtime-only inference (importable as ``softlabelseg_export``).

Modules (importing the package imports nothing else, so the runtime path stays free of torch):

- ``wrapper``, ``exporter``, ``fold``: the traced module (uint8 RGB in; logits, probabilities or a
  uint8 class map out), ``torch.onnx`` export, constant folding of static shape arithmetic.
- ``metadata``: what a runner needs, stored as JSON ``metadata_props`` (torch-free).
- ``checkpoint``, ``recipe``, ``pipeline``: strict checkpoint loading, recipe -> model and metadata,
  the steps behind the command lines.
- ``verification``: PyTorch vs ONNX Runtime (max logit difference, argmax agreement).
- ``runtime``: the serving pipeline with onnxruntime, numpy and cv2 only; ``guards``: its torch-free
  checks (NaN / inf initializers, the machine's memory, output folder vs input folder, atomic writes).
- ``random_models``: paper models with random weights and calibrated BatchNorm (deployability checks,
  serving benchmarks).
- Command lines: ``export_onnx.py``, ``verify.py``, ``infer_onnx.py``; C++ runner in ``cpp/``.
"""
