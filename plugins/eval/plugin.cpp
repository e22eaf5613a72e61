// The evaluator plugin: the second of the two plugins that link LibTorch.
#include "catlip/eval/eval_stage.h"
#include "catlip/plugin.h"

CATLIP_PLUGIN("eval", "0.1.0", "CatLIP evaluator: mAP/F1/precision@k of a checkpoint on held-out shards (LibTorch)");
CATLIP_REGISTER_STAGE(catlip::eval::EvalStage);
