# OpenAI CLIP's SimpleTokenizer (simple_tokenizer.py: bytes_to_unicode, bpe,
# encode), without ftfy/html (the input is already normalized), reading a
# catlip-bpe/1 merges file. Usage: clip_bpe_ref.py TOKENIZER TSV, TSV lines
# "normalized text<TAB>space-separated ids" as catlip encoded them; prints
# mismatches and "N lines, M mismatches".
import regex as re, sys
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~")+1))+list(range(ord("¡"), ord("¬")+1))+list(range(ord("®"), ord("ÿ")+1))
    cs = bs[:]; n = 0
    for b in range(2**8):
        if b not in bs: bs.append(b); cs.append(2**8+n); n += 1
    return dict(zip(bs, [chr(n) for n in cs]))
def get_pairs(word):
    return set(zip(word[:-1], word[1:]))
class T:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        merges = open(path, encoding='utf-8').read().split('\n')[1:]
        merges = [tuple(m.split()) for m in merges if m]
        vocab = list(self.byte_encoder.values()); vocab = vocab + [v+'</w>' for v in vocab]
        for m in merges: vocab.append(''.join(m))
        vocab.extend(['<|startoftext|>', '<|endoftext|>'])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {'<|startoftext|>': '<|startoftext|>', '<|endoftext|>': '<|endoftext|>'}
        self.pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)
    def bpe(self, token):
        if token in self.cache: return self.cache[token]
        word = tuple(token[:-1]) + ( token[-1] + '</w>',)
        pairs = get_pairs(word)
        if not pairs: return token+'</w>'
        while True:
            bigram = min(pairs, key = lambda pair: self.bpe_ranks.get(pair, float('inf')))
            if bigram not in self.bpe_ranks: break
            first, second = bigram; new_word = []; i = 0
            while i < len(word):
                try:
                    j = word.index(first, i); new_word.extend(word[i:j]); i = j
                except: new_word.extend(word[i:]); break
                if word[i] == first and i < len(word)-1 and word[i+1] == second:
                    new_word.append(first+second); i += 2
                else:
                    new_word.append(word[i]); i += 1
            word = tuple(new_word)
            if len(word) == 1: break
            pairs = get_pairs(word)
        word = ' '.join(word); self.cache[token] = word; return word
    def encode(self, text):
        bpe_tokens = []
        for token in re.findall(self.pat, text):
            token = ''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(' '))
        return bpe_tokens
t = T(sys.argv[1]); bad = 0; n = 0
for line in open(sys.argv[2], encoding='utf-8'):
    text, ids = line.rstrip('\n').split('\t')
    ours = [int(x) for x in ids.split()] if ids else []
    ref = t.encode(text); n += 1
    if ref != ours:
        bad += 1
        if bad < 5: print("MISMATCH", repr(text), ours, ref)
print(n, "lines,", bad, "mismatches")
