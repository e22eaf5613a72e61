# The loaders catlip is held against in `catlip bench decode` and `catlip bench
# pipeline`: WebDataset + DataLoader, SPDL, DALI (CPU), on the same shards.
"""One peer loader over WebDataset shards, run by `catlip bench decode` and
`catlip bench pipeline` in the project venv (.venv/bin/python):

  webdataset  webdataset.DataPipeline (SimpleShardList, split_by_worker,
              tarfile_to_samples, decode("pilrgb")) in a webdataset.WebLoader
              (torch DataLoader) with W worker processes; PIL decode,
              torchvision.transforms.v2 RandomResizedCrop + RandomHorizontalFlip
              (the OpenCLIP path), batched in the workers (wds.batched)
  spdl        spdl.pipeline: a source thread reading the tars with
              spdl.io.iter_tarfile, a pipe stage of concurrency W decoding with
              spdl.io (FFmpeg: crop, scale, hflip in the decoder's filter graph),
              and labelling (one thread at a time: the Labeller's lock),
              aggregate(B) and a collate stage, on W threads
  dali        nvidia.dali on CPU (device_id=None, W threads):
              fn.readers.webdataset, fn.decoders.image_random_crop(device="cpu"),
              fn.resize, fn.flip with fn.random.coin_flip

Every one does RandomResizedCrop(size) with scale (0.08, 1) and ratio
(3/4, 4/3), a horizontal flip with probability 0.5, and yields uint8
[B,size,size,3] batches. --task pipeline also labels each caption with
bench_labels.Labeller (NLTK, CoreNet's path) into float32 [B,classes]:
in the DataLoader workers (webdataset), in the decode stage (spdl), in the loop that takes DALI's batches (dali: a DALI pipeline runs no
Python per sample). --task decode leaves labels out. --epochs E reads the
shards E times. Seeded with --seed.

Prints one JSON line: loader, versions, samples, labels, batches, wall_s,
loop_s, cpu_s (this process and its reaped children: the workers), setup_cpu_s
(before the loader), loop_cpu_s. A loader whose package is missing prints
{"loader": ..., "skipped": REASON} and exits 0.
"""
import argparse
import json
import math
import os
import random
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def cpu_now():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def rrc_params(w, h, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop.get_params with a random.Random:
    (x, y, crop width, crop height)."""
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, w - cw), rng.randint(0, h - ch), cw, ch
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        cw, ch = int(round(h * ratio[1])), h
    else:
        cw, ch = w, h
    return (w - cw) // 2, (h - ch) // 2, cw, ch


def make_labeller(args):
    if args.task != "pipeline":
        return None
    import bench_labels
    return bench_labels.Labeller(args.vocab)


# --- webdataset + torch DataLoader + PIL + torchvision v2 (OpenCLIP's path) ---

def versions_webdataset():
    import PIL
    import torch
    import torchvision
    import webdataset
    return "webdataset %s, torch %s, torchvision %s, PIL %s" % (
        webdataset.__version__, torch.__version__, torchvision.__version__, PIL.__version__)


def run_webdataset(args, shards, labeller, emit):
    import numpy as np
    import torch
    import webdataset as wds
    from torchvision.transforms import v2

    torch.manual_seed(args.seed)  # the DataLoader seeds each worker from it
    crop = v2.Compose([v2.RandomResizedCrop(args.size, antialias=True), v2.RandomHorizontalFlip()])

    def image(img):
        return torch.from_numpy(np.asarray(crop(img), dtype=np.uint8).copy())

    def text(caption):
        return torch.from_numpy(labeller(caption)) if labeller else torch.zeros(0)

    ds = wds.DataPipeline(
        wds.SimpleShardList(shards),
        wds.split_by_worker,
        wds.tarfile_to_samples(),
        wds.decode("pilrgb"),
        wds.rename(image="jpg;jpeg;png", text="txt"),
        wds.map_dict(image=image, text=text),
        wds.to_tuple("image", "text"),
        wds.batched(args.batch, partial=True),
    )
    loader = wds.WebLoader(ds, batch_size=None, shuffle=False, num_workers=args.workers)
    it = iter(loader)
    for images, targets in it:
        emit(images.numpy(), targets.numpy() if labeller else None)
    del it  # the workers exit and are joined (and reaped) here


# --- SPDL: spdl.pipeline with spdl.io decode ---

def versions_spdl():
    import importlib.metadata
    import spdl.io
    spdl.io.demux_image  # loads libspdl: fails here when FFmpeg's libraries are missing
    return "spdl %s (FFmpeg from the system)" % importlib.metadata.version("spdl")


def run_spdl(args, shards, labeller, emit):
    import numpy as np
    import spdl.io
    from spdl.pipeline import PipelineBuilder

    def samples():
        i = 0
        for path in shards:
            with open(path, "rb") as f:
                data = f.read()
            key, group = None, {}
            for name, body in spdl.io.iter_tarfile(data):
                base = os.path.basename(name)
                k, _, ext = base.partition(".")
                k = os.path.join(os.path.dirname(name), k)
                if k != key and group:
                    yield i, group
                    i += 1
                    group = {}
                key = k
                group[ext.lower()] = body
            if group:
                yield i, group
                i += 1

    def decode(item):
        i, g = item
        rng = random.Random(args.seed * 1000003 + i)
        jpg = g.get("jpg") or g.get("jpeg") or g.get("png")
        packets = spdl.io.demux_image(bytes(jpg))
        x, y, cw, ch = rrc_params(packets.width, packets.height, rng)
        flip = ",hflip" if rng.random() < 0.5 else ""
        desc = "crop=%d:%d:%d:%d,scale=%d:%d:flags=bilinear%s,format=rgb24" % (
            cw, ch, x, y, args.size, args.size, flip)
        frames = spdl.io.decode_packets(packets, filter_desc=desc)
        img = spdl.io.to_numpy(spdl.io.convert_frames(frames)).reshape(args.size, args.size, 3)
        return img, (labeller(g["txt"]) if labeller else None)

    def collate(items):
        images = np.stack([im for im, _ in items])
        targets = np.stack([t for _, t in items]) if labeller else None
        return images, targets

    builder = (PipelineBuilder()
               .add_source(samples())
               .pipe(decode, concurrency=args.workers, output_order="input"))
    if labeller:
        labeller.warm()  # WordNet loaded before the threads label
    pipeline = (builder
                .aggregate(args.batch)
                .pipe(collate)
                .add_sink(4)
                .build(num_threads=args.workers, max_failures=0))
    with pipeline.auto_stop():
        for images, targets in pipeline:
            emit(images, targets)


# --- DALI on CPU ---

def versions_dali():
    import nvidia.dali
    return "nvidia-dali-cuda120 %s (CPU operators)" % nvidia.dali.__version__


def run_dali(args, shards, labeller, emit):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=args.batch, num_threads=args.workers, device_id=None, seed=args.seed,
                  prefetch_queue_depth=2)
    def pipe():
        jpg, txt = fn.readers.webdataset(paths=shards, ext=["jpg", "txt"], random_shuffle=False,
                                         missing_component_behavior="error", pad_last_batch=True,
                                         name="reader")
        img = fn.decoders.image_random_crop(jpg, device="cpu", output_type=types.RGB,
                                            random_area=[0.08, 1.0], random_aspect_ratio=[3 / 4, 4 / 3])
        img = fn.resize(img, resize_x=args.size, resize_y=args.size)
        img = fn.flip(img, horizontal=fn.random.coin_flip())
        return img, txt

    p = pipe()
    p.build()
    epoch = p.epoch_size("reader")
    steps = (epoch + args.batch - 1) // args.batch
    for _ in range(args.epochs):
        for s in range(steps):
            images, txt = p.run()
            real = min(args.batch, epoch - s * args.batch)  # the last batch is padded
            arr = images.as_array()[:real]
            targets = None
            if labeller:
                import numpy as np
                targets = np.stack([labeller(txt.at(j).tobytes()) for j in range(real)])
            emit(arr, targets)
    del p


LOADERS = {
    "webdataset": (versions_webdataset, run_webdataset),
    "spdl": (versions_spdl, run_spdl),
    "dali": (versions_dali, run_dali),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loader", required=True, choices=sorted(LOADERS))
    ap.add_argument("--task", default="pipeline", choices=["decode", "pipeline"])
    ap.add_argument("--vocab", help="vocabulary TSV (--task pipeline)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (webdataset) or threads")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--wordnet-dir", default="/usr/share/wordnet")
    ap.add_argument("shards", nargs="+")
    args = ap.parse_args()
    if args.task == "pipeline" and not args.vocab:
        ap.error("--task pipeline needs --vocab")
    t_start = time.perf_counter()
    versions_of, run = LOADERS[args.loader]
    try:
        versions = versions_of()
        if args.task == "pipeline":
            import nltk  # the labeller's
    except Exception as e:  # ImportError, or a native library that fails to load
        print(json.dumps({"loader": args.loader, "skipped": "%s: %s" % (type(e).__name__, e)}))
        return 0
    versions += ", Python %d.%d.%d" % sys.version_info[:3]
    random.seed(args.seed)
    tmp = tempfile.mkdtemp(prefix="catlip-bench-peers-")
    try:
        labeller = None
        if args.task == "pipeline":
            import bench_labels
            nltk.data.path.insert(0, bench_labels.make_nltk_data(tmp, args.wordnet_dir))
            labeller = make_labeller(args)
            versions += ", NLTK %s" % nltk.__version__
        shards = sorted(args.shards) * args.epochs if args.loader != "dali" else sorted(args.shards)
        counts = {"samples": 0, "labels": 0, "batches": 0}

        def emit(images, targets):
            assert images.dtype.name == "uint8" and tuple(images.shape[1:]) == (args.size, args.size, 3), images.shape
            counts["samples"] += images.shape[0]
            counts["batches"] += 1
            if targets is not None:
                counts["labels"] += int(targets.sum())

        setup_cpu = cpu_now()
        t0 = time.perf_counter()
        run(args, shards, labeller, emit)
        t1 = time.perf_counter()
        cpu = cpu_now()
        print(json.dumps(dict(
            counts, loader=args.loader, task=args.task, versions=versions,
            classes=labeller.classes if labeller else 0, pos_tag=bool(labeller and labeller.tagger),
            wall_s=round(t1 - t_start, 4), loop_s=round(t1 - t0, 4), cpu_s=round(cpu, 4),
            setup_cpu_s=round(setup_cpu, 4), loop_cpu_s=round(cpu - setup_cpu, 4), workers=args.workers)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
