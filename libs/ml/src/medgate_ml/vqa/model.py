"""The small grounded VQA network (TinyV2T).

- Image encoder: a four-level CNN with a two-step decoder, giving region features V at
  1/2 resolution (32×32 regions × ``dim``); image-level heads predict modality and plane.
- Question encoder: the frozen token states of a pretrained sentence encoder
  (all-MiniLM-L6-v2, computed outside the graph), projected to ``dim``, one residual 1-D
  convolution over tokens, then two attention poolings: the *key phrase* t (what to look
  for) and the question vector q (what to answer); and the projected mean of the states,
  the sentence vector s, which alone decides the intent (the pretrained encoder places a
  new phrasing near the ones it paraphrases, so the intent generalises beyond the
  templates trained on).
- Phrase grounding: V is gated by t (a light cross-modal fusion), and the alignment score
  S = <fused V, W t> per region is the grounding logit map, supervised by the gold mask.
- Region-level pixel attention: V' = V ⊙ (1 + λ·A) with A = sigmoid(S); V' is pooled
  (mean and max) together with the A-weighted mean of V, so the answer head sees the
  grounded region explicitly.
- Heads: the intent (question type, incl. out-of-scope) from s; the answer over one shared
  vocabulary from [q, pooled features, q ⊙ grounded features, map statistics].

``grounded=False`` is the ablation: no grounding branch, no attention (A ≡ 0), global
pooling only, everything else identical.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from medgate_ml.vqa.text import HIDDEN, MAX_TOKENS

N_MODALITIES, N_PLANES = 2, 3
N_STATS = 7


def _block(cin: int, cout: int, convs: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ImageEncoder(nn.Module):
    def __init__(self, dim: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.e1, self.e2, self.e3, self.e4 = _block(2, w), _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 4 * w)
        self.d3 = _block(8 * w, 4 * w, convs=1)
        self.d2 = _block(6 * w, dim, convs=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Region features [B, dim, H/2, W/2] and the deepest features [B, 4w, H/8, W/8]."""
        f1 = self.e1(x)
        f2 = self.e2(functional.max_pool2d(f1, 2))
        f3 = self.e3(functional.max_pool2d(f2, 2))
        f4 = self.e4(functional.max_pool2d(f3, 2))
        u3 = self.d3(torch.cat([functional.interpolate(f4, scale_factor=2.0, mode="nearest"), f3], 1))
        v = self.d2(torch.cat([functional.interpolate(u3, scale_factor=2.0, mode="nearest"), f2], 1))
        return v, f4


class QuestionEncoder(nn.Module):
    def __init__(self, dim: int, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, dim)
        self.conv = nn.Conv1d(dim, dim, 3, padding=1)
        self.key_score = nn.Linear(dim, 1)
        self.q_score = nn.Linear(dim, 1)
        self.sentence = nn.Sequential(nn.Dropout(0.1), nn.Linear(hidden, dim))

    def forward(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """states [B, MAX_TOKENS, HIDDEN] (zero rows = padding) → tokens [B, M, d], key phrase t,
        question q, sentence s, key weights [B, M]."""
        present = (states.abs().sum(-1) > 0).float()
        counts = present.sum(1, keepdim=True)
        words = self.proj(states) * present.unsqueeze(-1)
        tokens = words + functional.relu(self.conv(words.transpose(1, 2))).transpose(1, 2)
        pad = (1.0 - present) * -1e4
        key_w = torch.softmax(self.key_score(tokens).squeeze(-1) + pad, dim=1)
        q_w = torch.softmax(self.q_score(tokens).squeeze(-1) + pad, dim=1)
        mean = states.sum(1) / counts.clamp(min=1.0)
        return {
            "tokens": tokens,
            "t": (key_w.unsqueeze(-1) * tokens).sum(1),
            "q": (q_w.unsqueeze(-1) * tokens).sum(1),
            "s": self.sentence(mean),
            "key_weights": key_w,
        }


class GroundedVqaNet(nn.Module):
    def __init__(self, n_intents: int, n_answers: int, dim: int = 48, width: int = 16, grounded: bool = True) -> None:
        super().__init__()
        self.grounded = grounded
        self.dim = dim
        self.image = ImageEncoder(dim, width)
        self.text = QuestionEncoder(dim)
        self.gate = nn.Linear(dim, dim)
        self.fuse = nn.Conv2d(dim, dim, 1)
        self.align = nn.Linear(dim, dim)
        self.bias = nn.Parameter(torch.tensor(-2.0))
        self.lam = 1.0
        self.intent = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, n_intents))
        self.modality = nn.Linear(4 * width, N_MODALITIES)
        self.plane = nn.Linear(4 * width, N_PLANES)
        self.answer = nn.Sequential(nn.Linear(5 * dim + N_STATS, 128), nn.ReLU(), nn.Linear(128, n_answers))

    @staticmethod
    def map_stats(attn: torch.Tensor) -> torch.Tensor:
        """Where and how much the map lights up: [B, N_STATS] = mean, max, centre (row, col),
        spread (row, col), log mass — position, size and certainty for the answer head."""
        _, _, h, w = attn.shape
        rows = torch.linspace(0.0, 1.0, h, dtype=attn.dtype).view(1, 1, h, 1)
        cols = torch.linspace(0.0, 1.0, w, dtype=attn.dtype).view(1, 1, 1, w)
        mass = attn.sum((2, 3)) + 1e-3
        r = (attn * rows).sum((2, 3)) / mass
        c = (attn * cols).sum((2, 3)) / mass
        sr = ((attn * (rows - r.view(-1, 1, 1, 1)) ** 2).sum((2, 3)) / mass).sqrt()
        sc = ((attn * (cols - c.view(-1, 1, 1, 1)) ** 2).sum((2, 3)) / mass).sqrt()
        return torch.cat([attn.mean((2, 3)), attn.amax((2, 3)), r, c, sr, sc, torch.log(mass)], 1)

    def encode_image(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        v, deep = self.image(pixels)
        pooled = deep.mean((2, 3))
        return v, self.modality(pooled), self.plane(pooled)

    def forward_pairs(self, v: torch.Tensor, states: torch.Tensor) -> dict[str, torch.Tensor]:
        """Questions' token ``states`` [B, M, HIDDEN] against region features ``v`` [B, dim, h, w] (already paired)."""
        text = self.text(states)
        t, q = text["t"], text["q"]
        b, d, h, w = v.shape
        if self.grounded:
            gated = v * (1.0 + torch.tanh(self.gate(t))).view(b, d, 1, 1)
            fused = functional.relu(self.fuse(gated))
            score = (fused * self.align(t).view(b, d, 1, 1)).sum(1, keepdim=True) / d**0.5 + self.bias
            attn = torch.sigmoid(score)
        else:
            score = torch.full((b, 1, h, w), -20.0, dtype=v.dtype, device=v.device)
            attn = torch.zeros_like(score)
        weighted = v * (1.0 + self.lam * attn)
        g_mean = weighted.mean((2, 3))
        g_max = weighted.amax((2, 3))
        mass = attn.sum((2, 3))
        g_att = (v * attn).sum((2, 3)) / (mass + 1e-3) if self.grounded else g_mean
        stats = self.map_stats(attn)
        feats = torch.cat([q, g_mean, g_max, g_att, q * g_att, stats], 1)
        return {
            "intent": self.intent(text["s"]),
            "answer": self.answer(feats),
            "score": score,
            "key_weights": text["key_weights"],
        }


class PackedVqa(nn.Module):
    """The exported graph: one float input [B, 2·S·S + MAX_TOKENS·HIDDEN] (the image's two
    windowed channels, then the question's MiniLM token states), so the model fits the
    single-input export and any KServe/Triton contract. Outputs: intent logits, answer
    logits, modality logits, plane logits, grounding probabilities [B, 1, S, S], key-word weights."""

    def __init__(self, net: GroundedVqaNet, matrix: int) -> None:
        super().__init__()
        self.net, self.matrix = net, matrix

    def forward(self, packed: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = self.matrix
        n = 2 * s * s
        pixels = packed[:, :n].reshape(-1, 2, s, s)
        states = packed[:, n:].reshape(-1, MAX_TOKENS, HIDDEN)
        v, modality, plane = self.net.encode_image(pixels)
        out = self.net.forward_pairs(v, states)
        grounding = torch.sigmoid(functional.interpolate(out["score"], size=(s, s), mode="bilinear"))
        return out["intent"], out["answer"], modality, plane, grounding, out["key_weights"]


def pack(pixels: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    return torch.cat([pixels.flatten(1), states.flatten(1)], 1)
