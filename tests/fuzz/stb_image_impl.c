/* stb_image_impl.c — stb_image's implementation (from Debian's libstb-dev header), compiled
 * into the image fuzz target so that libFuzzer instruments the decoders it explores. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
