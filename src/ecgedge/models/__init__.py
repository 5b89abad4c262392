"""The classifiers and everything that builds or loads one (needs the ``train`` extra: torch).

* :mod:`.architectures`: the architecture registry and :class:`SpectrogramClassifier`;
* :mod:`.weights`: pretrained weights (torchvision, the packaged EfficientNet-Lite0, files);
* :mod:`.checkpoint`: a model from a checkpoint, pruned channel specs and QAT checkpoints included;
* :mod:`.qat_program`: the converted int8-simulating graph a QAT run keeps, and its runner;
* :mod:`.graph`: the graph forms compression and export share (:class:`ExportGraph`);
* :mod:`.torch_runtime`: a checkpoint run with numpy in and out, like the exported files.

Layering: this package sits above ``data`` and ``preprocess`` and below ``train``, ``compress``
and ``export``; it imports none of them. Import the submodules directly: this package imports
nothing, so ``import ecgedge.models`` stays cheap and torch-free.
"""
