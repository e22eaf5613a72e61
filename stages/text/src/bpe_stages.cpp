// catlip/text bpe_stages.cpp: text.bpe_* stages (being written).
