// A shared object that is not a catlip plugin: no descriptor symbol.
extern "C" int not_a_catlip_plugin() { return 42; }
