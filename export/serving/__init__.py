"""An exported model behind KServe's model server, speaking the Open Inference Protocol v2.

- ``requests``: OIP request tensors -> RGB image (checks named in 4xx messages), labels and scores ->
  response tensors; no framework import, so it is testable on its own.
- ``model``: the ``kserve.Model`` that admits, decodes and segments with
  :class:`softlabelseg_export.runtime.OnnxSegmenter` (the code behind ``infer_onnx.py``).
- ``server``: the ``softlabelseg-serve`` command line and the request-body limit (no kserve import
  until the arguments are checked); ``kserve_app``: KServe's ``ModelServer`` bound to one host, with
  the service's REST routes (metadata with classes, infer with binary tensors) and status codes.
- ``triton``: a Triton model repository (``<name>/1/model.onnx`` + ``config.pbtxt``) for an export.

Importing this package imports none of them: ``kserve`` is an optional extra (``pip install
".[serve]"``).
"""
