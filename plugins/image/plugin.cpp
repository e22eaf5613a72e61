// The `image` plugin: image decoding and augmentation.
#include "catlip/image/decode_stage.h"
#include "catlip/plugin.h"

CATLIP_PLUGIN("image", "0.1.0", "Image decoding (JPEG/PNG/WebP) with CatLIP train/eval transforms");
CATLIP_REGISTER_STAGE(catlip::image::ImageDecodeStage);
