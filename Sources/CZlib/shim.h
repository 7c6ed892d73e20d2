// The system zlib for DispatchWebSocket's permessage-deflate (RFC 7692).
// deflateInit2/inflateInit2 are macros Swift cannot import; these wrappers give them function form.
#ifndef DWS_CZLIB_SHIM_H
#define DWS_CZLIB_SHIM_H

#include <zlib.h>

static inline int dws_deflateInit2(z_streamp stream, int level, int windowBits, int memLevel) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}
static inline int dws_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}

#endif
