"""Training (needs the ``train`` extra: torch, torchvision, EfficientNet-Lite).

The models themselves live in :mod:`ecgedge.models`. Import the submodules directly
(``ecgedge.train.stage``, ``ecgedge.train.fit``); this package imports nothing so that
``import ecgedge.train`` stays cheap and torch-free.
"""
