#!/usr/bin/python3
"""PyTorch reference for `catlip bench train` (and for the trainer's export test).

The same ViT as stages/train (CLS token, learned position embeddings, pre-norm
blocks, GELU MLP, head on the CLS token) with timm's VisionTransformer
parameter names, and the same training step: BCE-with-logits summed over
classes and batch / batch size, gradient-norm clipping, AdamW with weight
decay on weights only. Run with Debian's /usr/bin/python3 (python3-torch 1.13).

  bench_train.py --size tiny --image 224 --batch 8 --threads 2 --steps 5
prints one JSON line: {"step_s": [...], "median_s": ..., "min_s": ...}.
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn

SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
         "large": (1024, 24, 16), "huge": (1280, 32, 20)}


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """timm VisionTransformer-compatible names (global_pool='token')."""

    def __init__(self, dim=192, depth=12, heads=3, mlp_ratio=4, image_size=224, patch_size=16,
                 num_classes=1000, eps=1e-6):
        super().__init__()
        n = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.patch_embed = PatchEmbed(dim, patch_size)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim <= 1 or name in ("cls_token", "pos_embed") or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def load_safetensors(path):
    """Reads a safetensors file (F32/I64 only) without the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    dtypes = {"F32": torch.float32, "I64": torch.int64, "U8": torch.uint8}
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + b:base + end]), dtype=dtypes[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out, meta


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dim, depth, heads = SIZES[args.size]
    model = ViT(dim, depth, heads, 4, args.image, args.patch, args.vocab)
    opt = torch.optim.AdamW(param_groups(model, 0.2), lr=1e-4, betas=(0.9, 0.999))
    x = torch.rand(args.batch, 3, args.image, args.image)
    y = torch.zeros(args.batch, args.vocab)
    y[:, ::97] = 1.0
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        logits = model(x)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), y, reduction="sum") / args.batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss.item()
        t = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(t)
    s = sorted(times)
    print(json.dumps({"step_s": times, "median_s": s[len(s) // 2], "min_s": s[0], "loss": loss.item(),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny", choices=sorted(SIZES))
    ap.add_argument("--image", type=int, default=224)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    bench(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
