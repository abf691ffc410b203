"""One training step per method; every method uses the same network, data and schedule.

- ``supervised``: one network on the labelled patches (also the fully supervised upper
  bound, when every training volume is labelled).
- ``mean_teacher``: a student and its EMA teacher; MSE between their softmax outputs on
  differently perturbed copies of the same patches (Tarvainen and Valpola, 2017).
- ``cps``: two networks, weak and strong views, each supervising the other with hard
  pseudo-labels at the finest scale (Chen et al., 2021).
- ``barl``: CPS's two branches plus DPR at every scale, PCBC, region-level and
  lesion-instance alignment. Each part can be switched off for the ablation.

Two-branch methods predict with branch A (the weak-view branch): one network at inference,
as for every baseline, so that compute at test time is the same for all.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from medgate_ml.seg import losses
from medgate_ml.seg.data import PatchSampler, strong_view, weak_view
from medgate_ml.seg.network import DeepSupervisedUNet, SegOutput, upsampled

METHODS = ("supervised", "mean_teacher", "cps", "barl")


@dataclass(frozen=True)
class BarlParts:
    """Which BARL components are on (the ablation removes one at a time)."""

    dpr: bool = True
    pcbc: bool = True
    region: bool = True
    instance: bool = True
    progressive: bool = True

    def without(self, part: str) -> BarlParts:
        return BarlParts(**{**self.__dict__, part: False})


@dataclass(frozen=True)
class Hyper:
    """Schedules and weights. Where the paper is silent these follow the research brief's
    defaults; ``lr`` and ``iterations`` are sized for these CPUs (see docs/barl.md)."""

    iterations: int = 600
    batch_labelled: int = 2
    batch_unlabelled: int = 2
    lr: float = 2e-3
    weight_decay: float = 1e-4
    ramp_fraction: float = 0.4
    width: int = 8
    cross_weight: float = 1.0  # lambda_max (CPS and DPR)
    pcbc_weight: float = 1.0  # beta
    align_weight: float = 0.1  # mu_max (region + instance)
    tau: float = 0.6  # DPR confidence threshold (CPS uses 0)
    ema: float = 0.99  # Mean Teacher
    consistency: float = 0.1  # Mean Teacher's MSE weight
    extra: dict[str, float] = field(default_factory=dict)


def poly_lr(optimizer: torch.optim.Optimizer, base: float, step: int, total: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = base * (1.0 - step / total) ** 0.9


class Method:
    """Base: owns the networks, the optimiser and the random streams of one run."""

    name = ""
    uses_unlabelled = True

    def __init__(self, hyper: Hyper, seed: int, device: str = "cpu") -> None:
        self.hyper = hyper
        self.device = torch.device(device)
        torch.manual_seed(seed)
        # The augmentation stream stays on the CPU whatever the device, so a run draws the
        # same flips, gammas and cutouts on a GPU as on the CPU.
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.nets = self.build()
        for module in self.networks():
            module.to(self.device)
        params = [p for n in self.nets for p in n.parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=hyper.lr, weight_decay=hyper.weight_decay)

    def build(self) -> list[DeepSupervisedUNet]:
        return [DeepSupervisedUNet(self.hyper.width)]

    def networks(self) -> list[DeepSupervisedUNet]:
        """Every network the method holds, trained or not (moved to the device together)."""
        return list(self.nets)

    @property
    def predictor(self) -> DeepSupervisedUNet:
        return self.nets[0]

    def ramp(self, step: int) -> float:
        return losses.ramp(step, int(self.hyper.ramp_fraction * self.hyper.iterations))

    def step(self, step: int, labelled: PatchSampler, unlabelled: PatchSampler | None) -> dict[str, float]:
        for net in self.nets:
            net.train()
        poly_lr(self.optimizer, self.hyper.lr, step, self.hyper.iterations)
        x_l, y_l = (t.to(self.device) for t in labelled.sample(self.hyper.batch_labelled, labelled=True))
        x_u = None
        if self.uses_unlabelled and unlabelled is not None:
            x_u = unlabelled.sample(self.hyper.batch_unlabelled, labelled=False)[0].to(self.device)
        terms = self.loss(step, x_l, y_l, x_u)
        total = sum(terms.values(), torch.zeros((), device=self.device))
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(total)
        self.optimizer.step()
        self.after_step()
        return {k: float(v.detach()) for k, v in terms.items()}

    def loss(
        self, step: int, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_step(self) -> None:
        return None

    def state(self) -> dict[str, object]:
        """The networks' weights as CPU tensors (a checkpoint loads anywhere)."""
        return {"method": self.name, "nets": [{k: v.cpu() for k, v in n.state_dict().items()} for n in self.nets]}


class Supervised(Method):
    name = "supervised"
    uses_unlabelled = False

    def loss(
        self, step: int, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        x, y = weak_view(x_l, y_l, self.generator)
        assert y is not None
        return {"sup": losses.supervised(self.nets[0](x).logits, y)}


class MeanTeacher(Method):
    name = "mean_teacher"

    def build(self) -> list[DeepSupervisedUNet]:
        student = DeepSupervisedUNet(self.hyper.width)
        self.teacher = copy.deepcopy(student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        return [student]

    def networks(self) -> list[DeepSupervisedUNet]:
        return [*self.nets, self.teacher]

    def loss(
        self, step: int, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        assert x_u is not None
        n_l = x_l.shape[0]
        x, y = weak_view(torch.cat([x_l, x_u]), torch.cat([y_l, torch.zeros_like(y_l[: x_u.shape[0]])]), self.generator)
        assert y is not None
        out = self.nets[0](self.noisy(x))
        self.teacher.train()
        with torch.no_grad():
            target = torch.softmax(self.teacher(self.noisy(x)).final, 1)
        consistency = ((torch.softmax(out.final, 1) - target) ** 2).mean()
        return {
            "sup": losses.supervised([z[:n_l] for z in out.logits], y[:n_l]),
            "consistency": self.hyper.consistency * self.ramp(step) * consistency,
        }

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.05 * torch.randn(x.shape, generator=self.generator).to(x.device)

    def after_step(self) -> None:
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.nets[0].parameters(), strict=True):
                t.mul_(self.hyper.ema).add_(s.detach(), alpha=1.0 - self.hyper.ema)


class TwoBranch(Method):
    """Branch A sees the weak view, branch B the strong view of the same patches; both learn."""

    def build(self) -> list[DeepSupervisedUNet]:
        return [DeepSupervisedUNet(self.hyper.width), DeepSupervisedUNet(self.hyper.width)]

    def forward_views(
        self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None
    ) -> tuple[SegOutput, SegOutput, torch.Tensor, int]:
        x = x_l if x_u is None else torch.cat([x_l, x_u])
        y_pad = y_l if x_u is None else torch.cat([y_l, torch.zeros_like(y_l[: x_u.shape[0]])])
        weak, y = weak_view(x, y_pad, self.generator)
        assert y is not None
        strong = strong_view(weak, self.generator)
        return self.nets[0](weak), self.nets[1](strong), y, x_l.shape[0]

    @staticmethod
    def supervised(a: SegOutput, b: SegOutput, y: torch.Tensor, n_l: int) -> torch.Tensor:
        """Deep supervision of both branches on the labelled part of the batch, averaged."""
        labelled = y[:n_l]
        return 0.5 * (
            losses.supervised([z[:n_l] for z in a.logits], labelled)
            + losses.supervised([z[:n_l] for z in b.logits], labelled)
        )


class CrossPseudoSupervision(TwoBranch):
    name = "cps"

    def loss(
        self, step: int, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        a, b, y, n_l = self.forward_views(x_l, y_l, x_u)
        size = tuple(y.shape[1:])
        cross = losses.dual_path([a.final], [b.final], size, tau=0.0)
        return {"sup": self.supervised(a, b, y, n_l), "cps": self.hyper.cross_weight * self.ramp(step) * cross}


class Barl(TwoBranch):
    name = "barl"

    def __init__(self, hyper: Hyper, seed: int, parts: BarlParts | None = None, device: str = "cpu") -> None:
        self.parts = parts or BarlParts()
        super().__init__(hyper, seed, device)

    def loss(
        self, step: int, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        h, parts = self.hyper, self.parts
        a, b, y, n_l = self.forward_views(x_l, y_l, x_u)
        size = tuple(y.shape[1:])
        lam = h.cross_weight * self.ramp(step)
        mu = h.align_weight * self.ramp(step)
        terms = {"sup": self.supervised(a, b, y, n_l)}
        # Without DPR the label space keeps CPS's plain finest-scale cross supervision, so
        # that removing DPR removes the multi-scale, confidence-masked part, not co-training.
        if parts.dpr:
            terms["dpr"] = lam * losses.dual_path(a.logits, b.logits, size, tau=h.tau)
        else:
            terms["cps"] = lam * losses.dual_path([a.final], [b.final], size, tau=0.0)
        if parts.pcbc:
            terms["pcbc"] = lam * h.pcbc_weight * losses.bias_correction(a.logits, b.logits, size, parts.progressive)
        if parts.region or parts.instance:
            with torch.no_grad():
                pa = torch.softmax(a.final, 1)
                pb = torch.softmax(b.final, 1)
                conf_a, lab_a = pa.max(1)
                conf_b, lab_b = pb.max(1)
                trusted = (lab_a == lab_b) & (conf_a >= h.tau) & (conf_b >= h.tau)
                agreed = torch.where(trusted, lab_a, torch.full_like(lab_a, -1))
                agreed[:n_l] = y[:n_l]  # labelled images: the ground truth
            if parts.region:
                terms["region"] = mu * losses.region_alignment(a.features, b.features, agreed)
            if parts.instance:
                fg_a = ((lab_a == 1) & (conf_a >= h.tau)).cpu().numpy()
                fg_b = ((lab_b == 1) & (conf_b >= h.tau)).cpu().numpy()
                truth = (y[:n_l] == 1).cpu().numpy()
                fg_a[:n_l], fg_b[:n_l] = truth, truth
                background = torch.stack(
                    [losses.prototype(b.features[n], (agreed[n] == 0).float()[None]) for n in range(y.shape[0])]
                )
                terms["instance"] = mu * losses.instance_alignment(a.features, b.features, fg_a, fg_b, background)
        return terms


def make_method(name: str, hyper: Hyper, seed: int, parts: BarlParts | None = None, device: str = "cpu") -> Method:
    if name == "barl":
        return Barl(hyper, seed, parts, device)
    classes: dict[str, type[Method]] = {
        "supervised": Supervised,
        "mean_teacher": MeanTeacher,
        "cps": CrossPseudoSupervision,
    }
    if name not in classes:
        raise ValueError(f"unknown method {name!r}; expected one of {METHODS}")
    return classes[name](hyper, seed, device)


__all__ = ["METHODS", "BarlParts", "Hyper", "Method", "make_method", "upsampled"]
