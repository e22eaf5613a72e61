"""catlip exports in timm and OpenCLIP: loaders and the CLIP converter.

    import catlip_peers
    m = catlip_peers.timm_model("run/export")            # timm, strict=True
    d = catlip_peers.open_clip_dir("run/export", "oc")   # an OpenCLIP local dir
    catlip_peers.register_timm_tower("oc")               # its image tower in timm
    model = open_clip.create_model("local-dir:oc")       # strict load
    tok = catlip_peers.open_clip_tokenizer("oc")         # SimpleTokenizer, catlip's merges

A train.catlip export's config.json names the timm model and kwargs that
hold it ("timm"; model_io.h's timm_form). A train.clip export is converted:
its image tower is the same timm ViT (OpenCLIP's TimmModel with timm_proj ""
uses the trunk's head, with bias, as the projection; OpenCLIP cannot pass
shape kwargs to timm, so the tower is registered under a name of its own);
its text tower is OpenCLIP's TextTransformer (argmax pooling, causal mask,
GELU, LayerNorm eps 1e-5) under OpenCLIP's names.
"""
import gzip
import json
import os
import re

import torch


def _cfg(export_dir):
    with open(os.path.join(export_dir, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def _load(path):
    from safetensors.torch import load_file
    return load_file(path)


def timm_model(export_dir, weights="model.safetensors"):
    """The train.catlip export as a timm VisionTransformer (eval mode)."""
    import timm
    cfg = _cfg(export_dir)
    t = cfg.get("timm")
    if not t:
        raise ValueError(f"{export_dir}/config.json has no 'timm' entry (an export older than timm_form)")
    if not t.get("exact"):
        raise ValueError(f"{export_dir}: timm has no exact form of this model: {t.get('note')}")
    m = timm.create_model(t["model"], num_classes=cfg["num_classes"], **t["kwargs"])
    m.load_state_dict(_load(os.path.join(export_dir, weights)), strict=True)
    return m.eval()


_TEXT_RENAMES = [
    (r"^text\.blocks\.(\d+)\.norm1\.", r"transformer.resblocks.\1.ln_1."),
    (r"^text\.blocks\.(\d+)\.norm2\.", r"transformer.resblocks.\1.ln_2."),
    (r"^text\.blocks\.(\d+)\.attn\.qkv\.weight$", r"transformer.resblocks.\1.attn.in_proj_weight"),
    (r"^text\.blocks\.(\d+)\.attn\.qkv\.bias$", r"transformer.resblocks.\1.attn.in_proj_bias"),
    (r"^text\.blocks\.(\d+)\.attn\.proj\.", r"transformer.resblocks.\1.attn.out_proj."),
    (r"^text\.blocks\.(\d+)\.mlp\.fc1\.", r"transformer.resblocks.\1.mlp.c_fc."),
    (r"^text\.blocks\.(\d+)\.mlp\.fc2\.", r"transformer.resblocks.\1.mlp.c_proj."),
    (r"^text\.", ""),  # token_embedding, positional_embedding, ln_final, text_projection
]


def _tower_name(v):
    return "catlip_vit_w{width}_l{layers}_h{heads}_m{mlp_ratio}_p{patch_size}_s{image_size}".format(**v)


def open_clip_state(export_dir, weights="model.safetensors"):
    """The train.clip export's tensors under OpenCLIP's CLIP names."""
    cfg = _cfg(export_dir)
    pool = cfg["vision_cfg"]["pool"]
    out = {}
    for k, t in _load(os.path.join(export_dir, weights)).items():
        if k.startswith("visual."):
            name = k[len("visual."):]
            if pool != "token" and name.startswith("norm."):
                name = "fc_" + name  # timm normalises after avg/max pooling with fc_norm
            out["visual.trunk." + name] = t
        elif k.startswith("text."):
            for pat, rep in _TEXT_RENAMES:
                new, n = re.subn(pat, rep, k)
                if n:
                    out[new] = t
                    break
        else:
            out[k] = t  # logit_scale
    return out


def open_clip_dir(export_dir, out_dir, weights="model.safetensors"):
    """Writes an OpenCLIP local dir (open_clip_config.json,
    open_clip_model.safetensors, bpe_vocab.txt.gz) for the train.clip export;
    open_clip.create_model("local-dir:" + out_dir) loads it (after
    register_timm_tower(out_dir)). Returns out_dir."""
    from safetensors.torch import save_file
    cfg = _cfg(export_dir)
    if cfg.get("architecture") != "clip":
        raise ValueError(f"{export_dir} is not a train.clip export")
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    if v["stem"] != "patchify":
        raise ValueError(f"{export_dir}: image stem '{v['stem']}' has no timm form (train with stem = \"patchify\")")
    if t.get("ln_eps", 1e-5) != 1e-5:
        raise ValueError(f"{export_dir}: text LayerNorm eps {t['ln_eps']} (OpenCLIP's is 1e-5)")
    os.makedirs(out_dir, exist_ok=True)
    model_cfg = {
        "embed_dim": cfg["embed_dim"],
        "quick_gelu": False,
        "vision_cfg": {"timm_model_name": _tower_name(v), "timm_model_pretrained": False,
                       "timm_pool": v["pool"], "timm_proj": "", "image_size": v["image_size"]},
        "text_cfg": {"context_length": t["context_length"], "vocab_size": t["vocab_size"], "width": t["width"],
                     "heads": t["heads"], "layers": t["layers"], "mlp_ratio": t["mlp_ratio"]},
    }
    if "init_logit_bias" in cfg:  # train.siglip: OpenCLIP then has the logit_bias the weights fill
        model_cfg["init_logit_bias"] = cfg["init_logit_bias"]
    oc = {"model_cfg": model_cfg, "catlip_vision_cfg": v}
    pre = cfg.get("preprocess_cfg")
    if pre:
        oc["preprocess_cfg"] = pre
    with open(os.path.join(out_dir, "open_clip_config.json"), "w", encoding="utf-8") as f:
        json.dump(oc, f, indent=1)
    save_file({k: x.contiguous() for k, x in open_clip_state(export_dir, weights).items()},
              os.path.join(out_dir, "open_clip_model.safetensors"))
    # The merges for SimpleTokenizer: its reader skips the first line and
    # takes every other line as a merge, so no trailing newline.
    with open(os.path.join(export_dir, cfg.get("tokenizer", "tokenizer.txt")), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [ln for ln in lines[1:] if ln.strip()]
    with gzip.open(os.path.join(out_dir, "bpe_vocab.txt.gz"), "wb") as f:
        f.write(("#version: 0.2\n" + "\n".join(merges)).encode("utf-8"))
    return out_dir


def register_timm_tower(oc_dir):
    """Registers, in timm, the image tower an open_clip_dir names."""
    import timm
    from timm.models import register_model
    from timm.models.vision_transformer import VisionTransformer
    with open(os.path.join(oc_dir, "open_clip_config.json"), encoding="utf-8") as f:
        v = json.load(f)["catlip_vision_cfg"]
    name = _tower_name(v)
    if name in timm.list_models(name):
        return name

    def tower(pretrained=False, **kwargs):
        args = dict(img_size=v["image_size"], patch_size=v["patch_size"], embed_dim=v["width"], depth=v["layers"],
                    num_heads=v["heads"], mlp_ratio=v["mlp_ratio"], class_token=True)
        for k in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):  # timm's factory passes these
            kwargs.pop(k, None)
        return VisionTransformer(**dict(args, **kwargs))

    tower.__name__ = name
    register_model(tower)
    return name


def open_clip_tokenizer(oc_dir, context_length):
    """OpenCLIP's SimpleTokenizer on the merges open_clip_dir wrote."""
    from open_clip.tokenizer import SimpleTokenizer
    return SimpleTokenizer(bpe_path=os.path.join(oc_dir, "bpe_vocab.txt.gz"), context_length=context_length)
