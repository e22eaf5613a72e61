// The `text` plugin: captions -> WordNet synset labels and the vocabulary.
#include "catlip/plugin.h"
#include "catlip/text/bpe_stages.h"
#include "catlip/text/stages.h"

CATLIP_PLUGIN("text", "0.1.0", "Captions to WordNet synset labels (tokenize, POS-tag, lemmatize) and the synset vocabulary; CLIP's byte-level BPE tokenizer learned from captions");

using namespace catlip::text;
CATLIP_REGISTER_STAGE(ParseStage);
CATLIP_REGISTER_STAGE(SynsetCountStage);
CATLIP_REGISTER_STAGE(VocabMergeStage);
CATLIP_REGISTER_STAGE(LabelsStage);
CATLIP_REGISTER_STAGE(BpeCountStage);
CATLIP_REGISTER_STAGE(BpeLearnStage);
CATLIP_REGISTER_STAGE(BpeEncodeStage);
