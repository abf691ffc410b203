"""BARL's parts and the baselines: shapes, loss identities, matching, metrics and a few
training steps of every method (tiny volumes, so this stays fast on two cores)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional

from medgate_ml.seg import losses
from medgate_ml.seg.data import PATCH, PatchSampler, Volume, labelled_split, strong_view, synth_volume, weak_view
from medgate_ml.seg.methods import BarlParts, Hyper, make_method
from medgate_ml.seg.metrics import postprocess, score_volume, summarise
from medgate_ml.seg.network import DeepSupervisedUNet


@pytest.fixture(scope="module")
def volumes() -> list[Volume]:
    return [synth_volume(9, i, 3, slices=16) for i in range(3)]


def test_network_has_four_scales_and_unit_features() -> None:
    net = DeepSupervisedUNet(width=4, embed=8)
    out = net(torch.rand(2, 1, 16, 32, 32))
    assert [tuple(z.shape[2:]) for z in out.logits] == [(2, 4, 4), (4, 8, 8), (8, 16, 16), (16, 32, 32)]
    assert out.features.shape == (2, 8, 16, 32, 32)
    assert torch.allclose(out.features.norm(dim=1), torch.ones(2, 16, 32, 32), atol=1e-5)


def test_dpr_at_the_finest_scale_without_a_threshold_is_cross_pseudo_supervision() -> None:
    torch.manual_seed(0)
    za, zb = torch.randn(2, 2, 4, 8, 8), torch.randn(2, 2, 4, 8, 8)
    expected = functional.cross_entropy(zb, za.argmax(1)) + functional.cross_entropy(za, zb.argmax(1))
    got = losses.dual_path([za], [zb], (4, 8, 8), tau=0.0)
    assert torch.allclose(got, expected, atol=1e-5)
    # a confidence threshold no voxel reaches leaves nothing to supervise
    assert float(losses.dual_path([za], [zb], (4, 8, 8), tau=1.01)) == 0.0


def test_pcbc_vanishes_when_branches_agree_and_carries_coarse_disagreement_down() -> None:
    torch.manual_seed(1)
    logits = [torch.randn(1, 2, 2, 4, 4), torch.randn(1, 2, 4, 8, 8)]
    assert float(losses.bias_correction(logits, [z.clone() for z in logits], (4, 8, 8))) == pytest.approx(0.0, abs=1e-6)
    coarse = torch.zeros(1, 1, 4, 8, 8)
    coarse[..., :2, :, :] = 2.0  # the branches disagreed here at the coarse scale
    fine = torch.zeros(1, 1, 4, 8, 8)  # ... and agree everywhere at the fine one
    w_coarse = losses.reliability(coarse, None)
    w_fine = losses.reliability(fine, w_coarse)
    assert torch.all(w_fine[..., :2, :, :] < 0.2) and torch.all(w_fine[..., 2:, :, :] == 1.0)
    assert torch.all(losses.reliability(fine, None) == 1.0)  # the non-progressive ablation forgets it


def test_region_alignment_is_zero_for_equal_prototypes_and_one_for_orthogonal() -> None:
    masks = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    masks[0, :2] = 1
    same = torch.zeros(1, 2, 4, 4, 4)
    same[:, 0] = 1.0
    assert float(losses.region_alignment(same, same.clone(), masks)) == pytest.approx(0.0, abs=1e-6)
    other = torch.zeros(1, 2, 4, 4, 4)
    other[:, 1] = 1.0
    assert float(losses.region_alignment(same, other, masks)) == pytest.approx(1.0, abs=1e-5)
    untrusted = torch.full_like(masks, -1)
    assert float(losses.region_alignment(same, other, untrusted)) == 0.0


def test_instances_are_matched_by_iou_whatever_their_order() -> None:
    a = np.zeros((8, 16, 16), dtype=bool)
    a[2:5, 1:5, 1:5] = True  # larger
    a[2:4, 10:13, 10:13] = True
    b = np.zeros_like(a)
    b[2:4, 10:13, 11:14] = True  # the small one, shifted by a voxel
    b[2:5, 1:5, 2:6] = True
    inst_a, inst_b = losses.components(a, 4, 16), losses.components(b, 4, 16)
    pairs = losses.match_instances(inst_a, inst_b)
    assert len(pairs) == 2
    for i, j in pairs:
        assert np.logical_and(inst_a[i], inst_b[j]).sum() > 0
    far = np.zeros_like(a)
    far[6:8, 14:16, 0:2] = True
    assert losses.match_instances(inst_a, losses.components(far, 2, 16)) == []


def test_instance_alignment_pulls_matched_lesions_and_pushes_others() -> None:
    torch.manual_seed(2)
    fg = np.zeros((1, 8, 16, 16), dtype=bool)
    fg[0, 2:5, 1:5, 1:5] = True
    fg[0, 2:5, 10:14, 10:14] = True
    fa = functional.normalize(torch.randn(1, 8, 8, 16, 16), dim=1).requires_grad_(True)
    fb = functional.normalize(torch.randn(1, 8, 8, 16, 16), dim=1)
    background = fb.mean(dim=(2, 3, 4))
    loss = losses.instance_alignment(fa, fb, fg, fg, background)
    loss.backward()
    assert float(loss.detach()) > 0.0 and fa.grad is not None and float(fa.grad.abs().sum()) > 0.0
    # identical branches: the cosine part is zero, only the contrastive part remains
    same = losses.instance_alignment(fb, fb.clone(), fg, fg, background, gamma=0.0)
    assert float(same) == pytest.approx(0.0, abs=1e-5)


def test_ramp_rises_from_near_zero_to_one() -> None:
    assert losses.ramp(0, 100) == pytest.approx(np.exp(-5.0))
    assert losses.ramp(50, 100) < losses.ramp(80, 100) < losses.ramp(100, 100) == 1.0


def test_views_keep_voxel_correspondence(volumes: list[Volume]) -> None:
    sampler = PatchSampler(volumes, np.random.default_rng(0))
    x, y = sampler.sample(3, labelled=True)
    assert x.shape == (3, 1, *PATCH) and y.shape == (3, *PATCH)
    assert int(y.sum()) > 0  # lesion-centred crops
    g = torch.Generator().manual_seed(0)
    weak, wy = weak_view(x, y, g)
    assert wy is not None and wy.sum() == y.sum()
    strong = strong_view(weak, g)
    assert strong.shape == weak.shape and not torch.equal(strong, weak)


def test_labelled_split_is_per_seed_and_disjoint() -> None:
    lab, unl = labelled_split(80, 0.10, 0)
    assert len(lab) == 8 and len(unl) == 72 and not set(lab) & set(unl)
    assert labelled_split(80, 0.10, 0) == (lab, unl) and labelled_split(80, 0.10, 1)[0] != lab
    assert len(labelled_split(80, 0.05, 0)[0]) == 4


@pytest.mark.parametrize(
    ("name", "parts", "terms"),
    [
        ("supervised", None, {"sup"}),
        ("mean_teacher", None, {"sup", "consistency"}),
        ("cps", None, {"sup", "cps"}),
        ("barl", None, {"sup", "dpr", "pcbc", "region", "instance"}),
        ("barl", BarlParts().without("dpr"), {"sup", "cps", "pcbc", "region", "instance"}),
        ("barl", BarlParts().without("instance").without("region"), {"sup", "dpr", "pcbc"}),
    ],
)
def test_every_method_trains_a_few_steps(
    volumes: list[Volume], name: str, parts: BarlParts | None, terms: set[str]
) -> None:
    hyper = Hyper(iterations=3, width=4)
    method = make_method(name, hyper, seed=0, parts=parts)
    before = [p.detach().clone() for p in method.predictor.parameters()]
    rng = np.random.default_rng(0)
    for step in range(3):
        got = method.step(step, PatchSampler(volumes[:1], rng), PatchSampler(volumes[1:], rng))
        assert set(got) == terms and all(np.isfinite(v) for v in got.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, method.predictor.parameters(), strict=True))


def test_metrics_of_a_perfect_an_empty_and_a_false_positive_prediction() -> None:
    instances = np.zeros((8, 16, 16), dtype=np.uint16)
    instances[2:5, 2:6, 2:6] = 1
    instances[2:4, 10:13, 10:13] = 2
    perfect = score_volume(instances > 0, instances, "p", (3.0, 3.0, 3.0))
    assert perfect.dice == pytest.approx(1.0) and perfect.hd95_mm == pytest.approx(0.0) and perfect.found == 2
    empty = score_volume(np.zeros_like(instances, dtype=bool), instances, "e", (3.0, 3.0, 3.0))
    assert empty.dice == 0.0 and empty.found == 0 and empty.hd95_mm == pytest.approx(np.linalg.norm([24, 48, 48]))
    fp = np.zeros_like(instances, dtype=bool)
    fp[6:8, 0:3, 0:3] = True
    normal = score_volume(fp, np.zeros_like(instances), "n", (3.0, 3.0, 3.0))
    summary = summarise([perfect, empty, normal])
    assert summary["dice"] == pytest.approx(0.5)
    assert summary["lesion_recall"] == pytest.approx(0.5) and summary["normal_with_fp"] == 1.0
    assert summary["lesion_precision"] == pytest.approx(2 / 3)


def test_postprocess_drops_small_islands() -> None:
    p = np.zeros((8, 16, 16), dtype=np.float32)
    p[1:3, 1:3, 1:3] = 0.9  # 8 voxels: kept
    p[6, 10, 10] = 0.9  # 1 voxel: dropped
    mask = postprocess(p, 0.5, 8)
    assert mask.sum() == 8 and not mask[6, 10, 10]


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU (passed on the lent H200: docs/results/barl/gpu-i2000/cuda-test.txt)",
)
@pytest.mark.parametrize("name", ["supervised", "mean_teacher", "cps", "barl"])
def test_a_step_on_the_gpu_sees_the_cpu_step_s_patches_and_views(volumes: list[Volume], name: str) -> None:
    """The device moves the networks and the batches only: with the same seed, the first
    step's losses on CUDA equal the CPU's up to float rounding (same initial weights, same
    patches, same augmentation draws), and every network ends up on the GPU."""
    hyper = Hyper(iterations=3, width=4)
    first: dict[str, dict[str, float]] = {}
    for device in ("cpu", "cuda"):
        method = make_method(name, hyper, seed=0, device=device)
        assert all(p.device.type == device for net in method.networks() for p in net.parameters())
        rng = np.random.default_rng(0)
        first[device] = method.step(0, PatchSampler(volumes[:1], rng), PatchSampler(volumes[1:], rng))
    assert first["cpu"].keys() == first["cuda"].keys()
    for term, value in first["cpu"].items():
        assert first["cuda"][term] == pytest.approx(value, rel=1e-3, abs=1e-5), term
