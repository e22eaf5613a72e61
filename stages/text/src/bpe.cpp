// catlip/text bpe.cpp: byte-level BPE (being written).
