# Seeded generator of dirty strings for the ftfy parity check (ftfy_parity.py):
# mojibake through six codecs once and twice, entities, ligatures, widths, C1s...
"""Writes N dirty strings, deterministic for a seed.

Each string starts from a clean base -- a caption (given on the command line
as a file, e.g. from `catlip text captions`, else built-in) or a multilingual
phrase -- and is dirtied by one or more of: mojibake (UTF-8 read as cp1252,
Latin-1, cp1250, cp1251, MacRoman or cp437, once or twice, whole or in part),
HTML entities, Latin ligatures, full-width text, C1 controls, curly quotes,
ANSI terminal escapes, line breaks (CR, CRLF, U+2028/9, U+0085), control
characters, U+FFFD and lost 0xA0 bytes. About a fifth are left clean.

    python tools/python/ftfy_corpus.py --count 100000 --seed 1 [--captions FILE] > corpus.jsonl
"""
import argparse
import json
import random
import sys

PHRASES = [
    "café naïve Zürich", "crème brûlée à la mode", "São Paulo, Brasil", "Ångström façade",
    "El niño está en la playa", "Größe und Übermaß", "Dvořák, Škoda, Łódź", "Kraków żółć",
    "Привет, как дела?", "Москва — столица", "Ελληνικά γράμματα", "東京 タワー", "日本語のテキスト",
    "北京欢迎你", "한국어 문장", "emoji 🐶🐱 and 😀", "price: 5 € or £4", "“quoted” and ‘single’",
    "don’t stop — it’s fine…", "naïve résumé", "l’été à Montréal", "piñata señor",
    "İstanbul’da ğüşiöç", "Đặng Thị", "العربية نص", "עברית טקסט", "ทดสอบ", "½ cup of flour",
    "50° north", "© 2024 ACME™", "x² + y³", "μ-opioid", "Ωmega", "fiancée", "coöperate",
]
CODECS = ["cp1252", "latin-1", "cp1250", "cp1251", "mac_roman", "cp437"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&eacute;", "&EACUTE;", "&copy;",
            "&#x41;", "&#8217;", "&hellip;", "&mdash;", "&NTILDE;", "&#128054;", "&#x3b;", "&bogus;",
            "&#0;", "&#150;", "&amp", "&Aacute;", "&rsquo;", "&ldquo;", "&#xD800;", "&frac12;"]
LIGATURES = "ﬀﬁﬂﬃﬄﬅﬆĲĳŉǄǅǆǇǈǉǊǋǌǱǲǳ"
QUOTES = "‘’‚‛“”„‟ʼ′″"
BREAKS = ["\r\n", "\r", "\u2028", "\u2029", "\u0085", "\n"]
CONTROLS = "\x00\x01\x08\x0b\x0c\x0e\x1f\x7f\u200b\u206a\ufeff\ufff9\ufffc\t"
ESCAPES = ["\x1b[31m", "\x1b[0m", "\x1b[1;32m", "\x1b[K", "\x1b[", "\x1b"]


def mojibake(rng: random.Random, s: str) -> str:
    """UTF-8 bytes of s read as one (or two stacked) single-byte codecs."""
    for _ in range(1 if rng.random() < 0.7 else 2):
        codec = rng.choice(CODECS)
        b = s.encode("utf-8", "surrogatepass")
        s = b.decode(codec, errors="replace")
    return s


def dirty(rng: random.Random, s: str) -> str:
    kinds = rng.sample(range(12), rng.choice([1, 1, 1, 2, 2, 3]))
    for k in kinds:
        if k in (0, 1, 2):  # mojibake: whole, a part, or with a lost byte
            if k == 1 and len(s) > 4:
                a = rng.randrange(len(s))
                b = min(len(s), a + rng.randint(1, 12))
                s = s[:a] + mojibake(rng, s[a:b]) + s[b:]
            else:
                s = mojibake(rng, s)
                if k == 2 and s:
                    i = rng.randrange(len(s))
                    s = s[:i] + rng.choice(["\ufffd", " ", "?", ""]) + s[i + 1:]
        elif k == 3:
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(s) + 1)
                s = s[:i] + rng.choice(ENTITIES) + s[i:]
        elif k == 4:
            s = "".join(rng.choice(LIGATURES) if c in "fi" and rng.random() < 0.5 else c for c in s)
        elif k == 5:
            s = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and rng.random() < 0.6 else
                        ("\u3000" if c == " " and rng.random() < 0.3 else c) for c in s)
        elif k == 6:
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(s) + 1)
                s = s[:i] + chr(rng.randint(0x80, 0x9F)) + s[i:]
        elif k == 7:
            s = "".join(rng.choice(QUOTES) if c in "'\"" or (c == " " and rng.random() < 0.1) else c for c in s)
        elif k == 8:
            i = rng.randrange(len(s) + 1)
            s = s[:i] + rng.choice(ESCAPES) + s[i:]
        elif k == 9:
            for _ in range(rng.randint(1, 2)):
                i = rng.randrange(len(s) + 1)
                s = s[:i] + rng.choice(BREAKS) + s[i:]
        elif k == 10:
            i = rng.randrange(len(s) + 1)
            s = s[:i] + rng.choice(CONTROLS) + s[i:]
        else:  # an 0xA0 byte in mojibake that became a space
            s = mojibake(rng, s + " " + rng.choice(["à la", "\u00a0", "🌠", "Π"])).replace("\xa0", " ")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--captions", help="file of captions, one per line (else built-in phrases only)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    captions = []
    if a.captions:
        with open(a.captions, encoding="utf-8") as f:
            captions = [line.rstrip("\n") for line in f if line.strip()]
    out = sys.stdout
    for _ in range(a.count):
        r = rng.random()
        if captions and r < 0.5:
            base = rng.choice(captions)
            if rng.random() < 0.4:  # a caption with non-ASCII words in it
                words = base.split(" ")
                words.insert(rng.randrange(len(words) + 1), rng.choice(PHRASES))
                base = " ".join(words)
        else:
            base = rng.choice(PHRASES)
            if captions and rng.random() < 0.5:
                base = rng.choice(captions) + " " + base
        s = base if rng.random() < 0.2 else dirty(rng, base)
        out.write(json.dumps(s) + "\n")


if __name__ == "__main__":
    main()
