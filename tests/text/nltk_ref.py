"""Reference outputs from NLTK for the catlip text tests and benchmark.

Usage: nltk_ref.py MODE IN OUT   (NLTK_DATA must hold corpora/wordnet)
  tokenize  each input line -> TreebankWordTokenizer tokens, tab-joined
  lemmas    each input word -> lemma \t morphy candidates (space-joined)
            \t wnid under CoreNet's rule or '-' \t wnid of the first sense or '-'
  bench     times the CoreNet path (Treebank tokenize, lemmatize every token,
            wn.synset(lemma + '.n.01') rule) on the input captions; writes
            'captions_per_s <x>' and 'pos_tag <yes|no>'
"""
import sys
import time

from nltk.corpus import wordnet as wn
from nltk.corpus.reader.wordnet import WordNetError
from nltk.stem import WordNetLemmatizer
from nltk.tokenize import TreebankWordTokenizer


def synset_rule(lemma):
    try:
        s = wn.synset(lemma + ".n.01")
    except (WordNetError, ValueError):
        return "-", "-"
    wnid = "n%08d" % s.offset()
    return (wnid if s.name() == lemma + ".n.01" else "-"), wnid


def main():
    mode, inp, out = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(inp, encoding="utf-8", errors="surrogateescape") as f:
        lines = [l.rstrip("\n") for l in f]
    res = []
    if mode == "tokenize":
        tok = TreebankWordTokenizer()
        res = ["\t".join(tok.tokenize(l)) for l in lines]
    elif mode == "lemmas":
        lem = WordNetLemmatizer()
        for w in lines:
            cands = wn._morphy(w, "n")
            l = lem.lemmatize(w, "n")
            head, first = synset_rule(l)
            res.append("\t".join([l, " ".join(cands), head, first]))
    elif mode == "bench":
        import nltk
        tok = TreebankWordTokenizer()
        lem = WordNetLemmatizer()
        try:
            nltk.pos_tag(["a", "dog"])
            tagger = True
        except LookupError:
            tagger = False
        synset_rule("dog")  # load WordNet before timing
        t0 = time.perf_counter()
        n = 0
        for c in lines:
            c = c.strip().lower()
            toks = tok.tokenize(c)
            if tagger:
                nltk.pos_tag(toks)
            labels = set()
            for w in toks:
                h, _ = synset_rule(lem.lemmatize(w))
                if h != "-":
                    labels.add(h)
            n += 1
        dt = time.perf_counter() - t0
        res = ["captions_per_s %.1f" % (n / dt), "pos_tag %s" % ("yes" if tagger else "no")]
    else:
        raise SystemExit("unknown mode " + mode)
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        for r in res:
            f.write(r + "\n")


if __name__ == "__main__":
    main()
