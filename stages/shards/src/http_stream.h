// http_stream.h (internal) - the libcurl HTTP(S) ByteStream of byte_stream.h.
#pragma once

#include <memory>
#include <string>

#include "catlip/shards/byte_stream.h"

namespace catlip::shards {

// libcurl's global initialisation, once per process.
void curl_init_once();

// A stream over an http:// or https:// URL, fetched on a background thread.
std::unique_ptr<ByteStream> open_http_stream(const std::string& url, const StreamOptions& opts);

}  // namespace catlip::shards
