"""ONNX export, verification and runtime-only inference (importable as ``softlabelseg_export``)."""
