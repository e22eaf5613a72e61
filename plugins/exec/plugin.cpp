// The `exec` plugin: stages written in any language, run as a program per
// replica that speaks the stage protocol (docs/stage-protocol.md).
#include "catlip/exec/stages.h"
#include "catlip/plugin.h"

CATLIP_PLUGIN("exec", "0.1.0", "Stages in any language: a program per replica over the catlip stage protocol");

CATLIP_REGISTER_STAGE(catlip::exec::ExecProcessStage);
CATLIP_REGISTER_STAGE(catlip::exec::ExecSourceStage);
