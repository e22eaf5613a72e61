// The plugin: its name, version and description, and its stage types. Build
// with catlip_add_plugin(myplugin ...) -> catlip_myplugin.so.
#include "catlip/plugin.h"
#include "stages.h"

CATLIP_PLUGIN("myplugin", "0.1.0", "Example plugin: a word source, an upper-casing transform, a text sink");

CATLIP_REGISTER_STAGE(myplugin::Words);
CATLIP_REGISTER_STAGE(myplugin::Upper);
CATLIP_REGISTER_STAGE(myplugin::Save);
