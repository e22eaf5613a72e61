#!/usr/bin/python3
"""The input side of CatLIP as users run it today (CoreNet's way), for
`catlip bench pipeline`: a torch.utils.data.DataLoader with W worker
processes over an IterableDataset that, per sample,

  * reads the WebDataset shard with tarfile (members grouped by key),
  * decodes the JPEG with PIL, applies torchvision RandomResizedCrop(size)
    and RandomHorizontalFlip, and converts it to a uint8 [size,size,3] tensor,
  * turns the caption into labels the CoreNet way: caption cleaning, NLTK
    Treebank tokenizer, (nltk.pos_tag when its model is installed; Debian
    does not package it), WordNetLemmatizer on every token, the wn.synset
    rule (lemma + '.n.01', kept when that synset's name is the lemma's own),
    and a float multi-hot vector over the vocabulary TSV,

batched by the DataLoader (default collate: [B,size,size,3] uint8 and
[B,classes] float). Prints one JSON line: samples, batches, labels, wall time,
CPU time of this process and its (exited) workers, library versions.

Usage: bench_pipeline_baseline.py --vocab VOCAB.tsv [--batch 64] [--workers 2]
                                  [--size 224] SHARD.tar...
"""
import argparse
import html
import io
import json
import os
import re
import resource
import sys
import tarfile
import tempfile
import time
import urllib.parse

# WordNet 3.0's lexicographer files in number order with their syntactic
# category; NLTK's reader needs this `lexnames` file, which Debian's
# wordnet-base lacks (same list as catlip::text::make_nltk_data_dir).
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl"]


def make_nltk_data(root, wordnet_dir):
    """nltk_data/corpora/wordnet under `root`: links to Debian's WordNet files
    plus lexnames. Returns the nltk_data directory."""
    data = os.path.join(root, "nltk_data")
    wn_dir = os.path.join(data, "corpora", "wordnet")
    os.makedirs(wn_dir, exist_ok=True)
    for f in os.listdir(wordnet_dir):
        link = os.path.join(wn_dir, f)
        if not os.path.exists(link):
            os.symlink(os.path.abspath(os.path.join(wordnet_dir, f)), link)
    with open(os.path.join(wn_dir, "lexnames"), "w") as out:
        for i, n in enumerate(LEXNAMES):
            cat = 1 if n.startswith("noun") else 2 if n.startswith("verb") else 3 if n.startswith("adj") else 4
            out.write("%02d\t%s\t%d\n" % (i, n, cat))
    return data


def load_vocab(path):
    """Vocabulary TSV (text.vocab_merge): index, wnid (n + 8-digit offset), ...
    Returns {synset offset: index}."""
    index = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#") or line.startswith("index\t"):
                continue
            cols = line.rstrip("\n").split("\t")
            index[int(cols[1][1:])] = int(cols[0])
    return index


HTML_RE = re.compile("<.*?>")


def clean(caption):
    # CoreNet's caption cleaning (without ftfy, which Debian lacks).
    caption = urllib.parse.unquote(str(caption)).replace("+", " ")
    caption = html.unescape(re.sub(HTML_RE, "", caption))
    caption = caption.replace("\n", " ")
    caption = re.sub(" +", " ", caption)
    return caption.strip().lower()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--wordnet-dir", default="/usr/share/wordnet")
    ap.add_argument("shards", nargs="+")
    args = ap.parse_args()

    t_start = time.perf_counter()
    import nltk

    tmp = tempfile.mkdtemp(prefix="catlip-bench-pipeline-nltk-")
    try:
        nltk.data.path.insert(0, make_nltk_data(tmp, args.wordnet_dir))
        return run(args, t_start)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, t_start):
    import numpy as np
    import torch
    import torchvision
    import torchvision.transforms as T
    import PIL
    from PIL import Image
    import nltk
    from nltk.corpus import wordnet as wn
    from nltk.corpus.reader.wordnet import WordNetError
    from nltk.stem import WordNetLemmatizer
    from nltk.tokenize import TreebankWordTokenizer

    vocab = load_vocab(args.vocab)
    classes = max(vocab.values()) + 1 if vocab else 0
    tok = TreebankWordTokenizer()
    lem = WordNetLemmatizer()
    try:
        nltk.pos_tag(["a", "dog"])
        tagger = True
    except LookupError:
        tagger = False

    def synset_rule(lemma):
        try:
            s = wn.synset(lemma + ".n.01")
        except (WordNetError, ValueError):
            return None
        return s.offset() if s.name() == lemma + ".n.01" else None

    # WordNet is loaded in each worker, not here: forked workers would share
    # the reader's open files (and their offsets) and corrupt each other's reads.

    rrc = T.RandomResizedCrop(args.size)
    flip = T.RandomHorizontalFlip()

    def labels_of(caption):
        toks = tok.tokenize(clean(caption))
        if tagger:
            nltk.pos_tag(toks)
        target = torch.zeros(classes, dtype=torch.float32)
        for w in toks:
            off = synset_rule(lem.lemmatize(w))
            if off is not None and off in vocab:
                target[vocab[off]] = 1.0
        return target

    def samples_of(path):
        """(key, {ext: bytes}) per key group of a WebDataset tar, in order."""
        key, group = None, {}
        with tarfile.open(path, "r|*") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                base = os.path.basename(m.name)
                k, _, ext = base.partition(".")
                k = os.path.join(os.path.dirname(m.name), k)
                if k != key and group:
                    yield key, group
                    group = {}
                key = k
                group[ext.lower()] = tar.extractfile(m).read()
        if group:
            yield key, group

    class Shards(torch.utils.data.IterableDataset):
        def __init__(self, shards):
            self.shards = shards

        def __iter__(self):
            synset_rule("dog")  # load WordNet in this process
            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            # Shards split over workers; with fewer shards than workers,
            # samples are split by position instead.
            by_shard = len(self.shards) >= nw
            mine = self.shards[wid::nw] if by_shard else self.shards
            i = 0
            for path in mine:
                for key, g in samples_of(path):
                    i += 1
                    if not by_shard and (i - 1) % nw != wid:
                        continue
                    jpg = g.get("jpg") or g.get("jpeg")
                    if jpg is None or "txt" not in g:
                        continue
                    img = Image.open(io.BytesIO(jpg)).convert("RGB")
                    img = flip(rrc(img))
                    image = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
                    yield image, labels_of(g["txt"].decode("utf-8", "replace"))

    loader = torch.utils.data.DataLoader(Shards(sorted(args.shards)), batch_size=args.batch,
                                         num_workers=args.workers)
    setup = resource.getrusage(resource.RUSAGE_SELF)  # imports, vocabulary
    t0 = time.perf_counter()
    samples = batches = labels = 0
    first_batch_s = None
    it = iter(loader)
    for images, targets in it:
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - t0
        assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == (args.size, args.size, 3)
        samples += images.shape[0]
        batches += 1
        labels += int(targets.sum().item())
    del it  # the workers exit and are joined here
    t1 = time.perf_counter()
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    print(json.dumps({
        "samples": samples, "batches": batches, "labels": labels, "classes": classes,
        "wall_s": round(t1 - t_start, 4), "loop_s": round(t1 - t0, 4),
        "first_batch_s": round(first_batch_s or 0, 4), "cpu_s": round(cpu, 4),
        "setup_cpu_s": round(setup.ru_utime + setup.ru_stime, 4),
        "workers": args.workers, "pos_tag": tagger,
        "versions": "torch %s, torchvision %s, PIL %s, NLTK %s" % (
            torch.__version__, torchvision.__version__, PIL.__version__, nltk.__version__),
    }))


if __name__ == "__main__":
    sys.exit(main())
