# The caption labeller every Python peer of `catlip bench pipeline` runs
# (tools/python/bench_peers.py): CoreNet's NLTK path over a vocabulary TSV.
"""Caption -> multi-hot labels the CoreNet way, shared by the peers so that
they differ only in their loader: caption cleaning, NLTK Treebank tokenizer,
(nltk.pos_tag when its model is installed; Debian does not package it),
WordNetLemmatizer on every token, the wn.synset rule (lemma + '.n.01', kept
when that synset's name is the lemma's own), and a float32 multi-hot vector
over the vocabulary TSV that text.vocab_merge wrote.

NLTK comes from PyPI (the project venv); its WordNet data from Debian's
wordnet-base, linked into a temporary nltk_data directory with the
`lexnames` file NLTK's reader needs (make_nltk_data).
"""
import html
import os
import re
import threading
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

HTML_RE = re.compile("<.*?>")


def make_nltk_data(root, wordnet_dir="/usr/share/wordnet"):
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


def clean(caption):
    """CoreNet's caption cleaning (without ftfy)."""
    caption = urllib.parse.unquote(str(caption)).replace("+", " ")
    caption = html.unescape(re.sub(HTML_RE, "", caption))
    caption = caption.replace("\n", " ")
    caption = re.sub(" +", " ", caption)
    return caption.strip().lower()


class Labeller:
    """caption (str or bytes) -> float32 multi-hot numpy vector over the
    vocabulary. WordNet is loaded lazily, in the process that labels (forked
    workers must not share the reader's open files and their offsets). Calls
    are serialised by a lock: NLTK's WordNet reader seeks and reads shared file
    handles, and two threads at once corrupt each other's reads (the labelling
    is Python, which holds the GIL anyway)."""

    def __init__(self, vocab_path):
        import nltk
        from nltk.stem import WordNetLemmatizer
        from nltk.tokenize import TreebankWordTokenizer
        self.vocab = load_vocab(vocab_path)
        self.classes = max(self.vocab.values()) + 1 if self.vocab else 0
        self.tok = TreebankWordTokenizer()
        self.lem = WordNetLemmatizer()
        self.lock = threading.Lock()
        try:
            nltk.pos_tag(["a", "dog"])
            self.tagger = True
        except LookupError:
            self.tagger = False

    def warm(self):
        """Loads WordNet in this process now (before threads label)."""
        self._synset("dog")

    def _synset(self, lemma):
        from nltk.corpus import wordnet as wn
        from nltk.corpus.reader.wordnet import WordNetError
        try:
            s = wn.synset(lemma + ".n.01")
        except (WordNetError, ValueError):
            return None
        return s.offset() if s.name() == lemma + ".n.01" else None

    def __call__(self, caption):
        with self.lock:
            return self._labels(caption)

    def _labels(self, caption):
        import nltk
        import numpy as np
        if isinstance(caption, (bytes, bytearray, memoryview)):
            caption = bytes(caption).decode("utf-8", "replace")
        toks = self.tok.tokenize(clean(caption))
        if self.tagger:
            nltk.pos_tag(toks)
        target = np.zeros(self.classes, dtype=np.float32)
        for w in toks:
            off = self._synset(self.lem.lemmatize(w))
            if off is not None and off in self.vocab:
                target[self.vocab[off]] = 1.0
        return target
