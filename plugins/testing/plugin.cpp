// The `testing` plugin: runtime test, demo and benchmark stages.
#include "catlip/plugin.h"
#include "collate_sink.h"
#include "jsonl_sink.h"
#include "testing_stages.h"

CATLIP_PLUGIN("testing", "0.1.0", "Stages for exercising the runtime: counter source, map, collect, null, collate and jsonl sinks");

CATLIP_REGISTER_STAGE(catlip::testing::CounterSource);
CATLIP_REGISTER_STAGE(catlip::testing::MapStage);
CATLIP_REGISTER_STAGE(catlip::testing::CollectSink);
CATLIP_REGISTER_STAGE(catlip::testing::NullSink);
CATLIP_REGISTER_STAGE(catlip::testing::CollateSink);
CATLIP_REGISTER_STAGE(catlip::testing::JsonlSink);
