"""Reference outputs from NLTK for the catlip text tests.

Usage: nltk_ref.py MODE IN OUT   (NLTK_DATA must hold corpora/wordnet)
  tokenize  each input line -> TreebankWordTokenizer tokens, tab-joined
  lemmas    each input word -> lemma \t morphy candidates (space-joined)
            \t wnid under CoreNet's rule or '-' \t wnid of the first sense or '-'
"""
import sys

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
    else:
        raise SystemExit("unknown mode " + mode)
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        for r in res:
            f.write(r + "\n")


if __name__ == "__main__":
    main()
