// The `shards` plugin: reading WebDataset tar shards.
#include "catlip/plugin.h"
#include "catlip/shards/shard_source.h"

CATLIP_PLUGIN("shards", "0.1.0", "WebDataset tar shard ingestion (local, file://, http(s)://)");
CATLIP_REGISTER_STAGE(catlip::shards::ShardSource);
