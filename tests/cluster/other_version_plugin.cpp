// The `testing` plugin as another version: same stages, version 9.9.9. Built
// into its own directory (never build/plugins) so that a node started with
// CATLIP_PLUGIN_PATH pointing there has a plugin set the coordinator refuses.
#include "catlip/plugin.h"
#include "testing_stages.h"

CATLIP_PLUGIN("testing", "9.9.9", "The testing plugin under another version, for the plugin-mismatch test");

CATLIP_REGISTER_STAGE(catlip::testing::CounterSource);
CATLIP_REGISTER_STAGE(catlip::testing::MapStage);
CATLIP_REGISTER_STAGE(catlip::testing::CollectSink);
CATLIP_REGISTER_STAGE(catlip::testing::NullSink);
