// Node-API addon: open-file-description byte-range locks (fcntl F_OFD_SETLK / F_OFD_GETLK), which Node's fs
// does not expose.
//
// Why these locks: they are the ones qemu takes on the images it opens (block/file-posix.c: one byte per
// permission at offsets 100 + n, one per permission it will not share at 200 + n). Taking the same bytes the same
// way makes qemu-img refuse an image chromogenic is writing, and chromogenic refuse one a qemu process writes.
// Unlike classic POSIX locks, they belong to the open file, not the process: closing another descriptor of the
// same file elsewhere in the process does not drop them, and two opens in one process do conflict.
//
// lock(fd, start, length)   a shared (read) lock on the range; throws EAGAIN (code) when a conflicting lock is held
// unlock(fd, start, length)
// test(fd, start, length)   null when an exclusive lock on the range could be taken now, else the first conflicting
//                           lock: { exclusive, start, length, pid } (pid -1 for another open file's OFD lock)
// All three are synchronous: a non-blocking fcntl returns at once.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <node_api.h>
#include "napi-common.h"

/** Reads (fd, start, length) into `fl`; false (with a TypeError thrown) when the arguments do not fit. */
static int read_range(napi_env env, napi_callback_info info, int *fd, struct flock *fl) {
  size_t argc = 3;
  napi_value argv[3];
  int64_t start, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok || napi_get_value_int64(env, argv[1], &start) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || *fd < 0 || start < 0 || length < 1) {
    fail(env, "expected (fd, start, length) with start >= 0 and length >= 1");
    return 0;
  }
  memset(fl, 0, sizeof *fl);
  fl->l_whence = SEEK_SET;
  fl->l_start = (off_t)start;
  fl->l_len = (off_t)length;
  return 1;
}

/** fcntl(fd, command, fl), retried on EINTR; false (the error thrown) when it fails. */
static int ofd_fcntl(napi_env env, int fd, int command, struct flock *fl) {
  while (fcntl(fd, command, fl) < 0) {
    if (errno == EINTR) continue;
    napi_throw(env, errno_error(env, errno, "fcntl"));
    return 0;
  }
  return 1;
}

static napi_value set_lock(napi_env env, napi_callback_info info, short type) {
  int fd;
  struct flock fl;
  if (!read_range(env, info, &fd, &fl)) return NULL;
  fl.l_type = type;
  if (!ofd_fcntl(env, fd, F_OFD_SETLK, &fl)) return NULL;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

static napi_value lock_range(napi_env env, napi_callback_info info) { return set_lock(env, info, F_RDLCK); }
static napi_value unlock_range(napi_env env, napi_callback_info info) { return set_lock(env, info, F_UNLCK); }

static napi_value test_range(napi_env env, napi_callback_info info) {
  int fd;
  struct flock fl;
  if (!read_range(env, info, &fd, &fl)) return NULL;
  fl.l_type = F_WRLCK;
  if (!ofd_fcntl(env, fd, F_OFD_GETLK, &fl)) return NULL;
  napi_value result;
  if (fl.l_type == F_UNLCK) {
    napi_get_null(env, &result);
    return result;
  }
  napi_value exclusive, start, length, pid;
  napi_create_object(env, &result);
  napi_get_boolean(env, fl.l_type == F_WRLCK, &exclusive);
  napi_create_int64(env, (int64_t)fl.l_start, &start);
  napi_create_int64(env, (int64_t)fl.l_len, &length);
  napi_create_int32(env, (int32_t)fl.l_pid, &pid);
  napi_set_named_property(env, result, "exclusive", exclusive);
  napi_set_named_property(env, result, "start", start);
  napi_set_named_property(env, result, "length", length);
  napi_set_named_property(env, result, "pid", pid);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"lock", NULL, lock_range, NULL, NULL, NULL, napi_default, NULL},
      {"unlock", NULL, unlock_range, NULL, NULL, NULL, napi_default, NULL},
      {"test", NULL, test_range, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
