// Node-API addon: the two lseek() whence values Node's fs module does not expose.
// seekData(fd, offset) / seekHole(fd, offset) return the new offset, or -1 when the kernel
// answers ENXIO (no data at or after offset). Any other errno becomes a thrown Error with its code,
// and EINVAL (a filesystem without SEEK_DATA support) lets the caller fall back to zero detection.
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include "napi-common.h"

static napi_value do_seek(napi_env env, napi_callback_info info, int whence) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    return fail(env, "expected (fd, offset)");
  }
  int32_t fd;
  int64_t offset;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok) {
    return fail(env, "fd and offset must be numbers");
  }
  off_t r = lseek(fd, (off_t)offset, whence);
  napi_value result;
  if (r < 0) {
    if (errno == ENXIO) {
      napi_create_int64(env, -1, &result);
      return result;
    }
    napi_throw(env, errno_error(env, errno, "lseek"));
    return NULL;
  }
  napi_create_int64(env, (int64_t)r, &result);
  return result;
}

static napi_value seek_data(napi_env env, napi_callback_info info) { return do_seek(env, info, SEEK_DATA); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return do_seek(env, info, SEEK_HOLE); }

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
    {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
