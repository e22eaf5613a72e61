#!/usr/bin/env python3
"""PyTorch reference for `catlip bench train` (and for the trainer's export test).

The same ViT as stages/train (CLS token, learned position embeddings, pre-norm
blocks, GELU MLP, head on the CLS token) with timm's VisionTransformer
parameter names, written as a PyTorch user writes it today: attention through
torch.nn.functional.scaled_dot_product_attention. The same training step as
the trainer: BCE-with-logits summed over classes and batch / batch size (in
fp32, outside autocast), gradient-norm clipping, AdamW with weight decay on
weights only (the fused kernel where this torch has one for the device).

Run it with the project venv's python (`catlip bench train` does), so that
both sides of the comparison use the same torch build.

  bench_train.py --size tiny --image 224 --batch 8 --threads 2 --steps 5
      [--device cpu|cuda[:N]] [--precision fp32|bf16] [--compile] [--no-fused-adamw]

prints one JSON line: {"step_s": [...], "median_s": ..., "min_s": ...,
"images_per_s": ..., "compile_s": ..., "torch": ..., "python": ..., ...}.
With --compile the model is wrapped in torch.compile (default mode); the
warm-up steps (at least 2: the first compiles forward and backward) are timed
apart as "warmup_s"/"compile_s" and left out of the step times. On failure it
prints {"error": "..."} (one line) and exits 1.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
         "large": (1024, 24, 16), "huge": (1280, 32, 20)}


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head dim)
        return self.proj(x.transpose(1, 2).reshape(B, T, D))


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


def make_optimizer(model, fused):
    """AdamW as the trainer configures it; fused=True where this torch supports
    it for the parameters' device (else the default foreach/for-loop kernel).
    Returns (optimizer, whether it is fused)."""
    groups = param_groups(model, 0.2)
    if fused:
        try:
            return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.999), fused=True), True
        except (RuntimeError, TypeError, ValueError):
            groups = param_groups(model, 0.2)
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.999)), False


def bench(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch.cuda.is_available() is False")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dim, depth, heads = SIZES[args.size]
    model = ViT(dim, depth, heads, 4, args.image, args.patch, args.vocab).to(device)
    model.train()
    opt, fused = make_optimizer(model, args.fused_adamw)
    step_model = torch.compile(model) if args.compile else model
    bf16 = args.precision == "bf16"
    x = torch.rand(args.batch, 3, args.image, args.image, device=device)
    y = torch.zeros(args.batch, args.vocab, device=device)
    y[:, ::97] = 1.0

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y, reduction="sum") / args.batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()  # waits for the step, as the trainer's loss read-out

    # Warm-up (compilation with --compile: forward at the first call, backward
    # at the first backward), timed apart from the steps.
    warmup = max(args.warmup, 2) if args.compile else args.warmup
    warm_s = []
    for _ in range(warmup):
        sync()
        t0 = time.perf_counter()
        loss = step()
        sync()
        warm_s.append(time.perf_counter() - t0)
    times = []
    for _ in range(args.steps):
        sync()
        t0 = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t0)
    s = sorted(times)
    med, best = s[len(s) // 2], s[0]
    out = {
        "step_s": times, "median_s": med, "min_s": best,
        "images_per_s": args.batch / med, "images_per_s_best": args.batch / best,
        "loss": loss, "warmup_s": warm_s,
        # The first step includes compilation (with --compile) or kernel and
        # allocator set-up (eager).
        "compile_s": warm_s[0] if (args.compile and warm_s) else 0.0,
        "compile": bool(args.compile), "fused_adamw": fused,
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": sys.executable,
    }
    print(json.dumps(out))


def device_arg(s):
    if s == "cpu" or s == "cuda" or (s.startswith("cuda:") and s[5:].isdigit()):
        return s
    raise argparse.ArgumentTypeError(f"{s!r}: cpu, cuda or cuda:N")


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
    ap.add_argument("--device", default="cpu", type=device_arg, help="cpu, cuda or cuda:N")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--compile", action="store_true", help="wrap the model in torch.compile (default mode)")
    ap.add_argument("--fused-adamw", dest="fused_adamw", action="store_true", default=True,
                    help="AdamW(fused=True) where available (default)")
    ap.add_argument("--no-fused-adamw", dest="fused_adamw", action="store_false")
    args = ap.parse_args()
    try:
        bench(args)
    except Exception as e:  # one line for the caller; the traceback on stderr
        import traceback
        traceback.print_exc()
        what = "torch.compile" if args.compile else "eager"
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        print(json.dumps({"error": f"{what} failed: {msg[:400]}", "torch": torch.__version__,
                          "python": sys.executable}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
