// Node-API addon: one positional read or write of a large buffer in ONE threadpool task, issued to the kernel
// as 1 MiB system calls.
//
// Why both halves: the engine moves 4 MiB per piece so that an uncompressed conversion needs a quarter of the
// threadpool round trips (each one wakes a thread on another CPU, which on a virtual machine costs an
// inter-processor interrupt, and the main thread's work per piece is divided by four too). But a single
// pread/pwrite of several MiB made this kernel (which caches files in large folios) take 2-6x its usual
// time in about one run of three, in C as in Node; 1 MiB calls never did. Node's fs issues one call per
// request, so the loop lives here.
//
// read(fd, buffer, position)  -> Promise<number>  bytes read (less than buffer.length only at end of file)
// write(fd, buffer, position) -> Promise<void>    all of buffer written (short writes are continued)
// Errors reject with an Error carrying `code` (e.g. "EIO"), `errno` and `syscall`, like node:fs.
// The caller must not touch the buffer until the promise settles (a reference keeps it alive).
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include "napi-common.h"

#define STEP ((size_t)1 << 20)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref;
  int fd;
  int writing;
  uint8_t *data;
  size_t length;
  off_t position;
  size_t done;
  int error;
} request_t;

static void execute(napi_env env, void *arg) {
  (void)env;
  request_t *r = arg;
  while (r->done < r->length) {
    const size_t want = r->length - r->done < STEP ? r->length - r->done : STEP;
    const ssize_t n = r->writing ? pwrite(r->fd, r->data + r->done, want, r->position + (off_t)r->done)
                                 : pread(r->fd, r->data + r->done, want, r->position + (off_t)r->done);
    if (n < 0) {
      if (errno == EINTR) continue;
      r->error = errno;
      return;
    }
    if (n == 0) {
      // End of file for a read; a write of zero bytes would loop forever, so it is an error.
      if (r->writing) r->error = EIO;
      return;
    }
    r->done += (size_t)n;
  }
}

static void complete(napi_env env, napi_status status, void *arg) {
  request_t *r = arg;
  const char *syscall = r->writing ? "write" : "read";
  if (status == napi_ok && r->error == 0) {
    napi_value result;
    if (r->writing) napi_get_undefined(env, &result);
    else napi_create_double(env, (double)r->done, &result);
    napi_resolve_deferred(env, r->deferred, result);
  } else {
    // A task libuv cancelled never ran: ECANCELED, as node:fs reports it.
    napi_value error = errno_error(env, r->error ? r->error : ECANCELED, syscall);
    napi_reject_deferred(env, r->deferred, error);
  }
  napi_delete_reference(env, r->buffer_ref);
  napi_delete_async_work(env, r->work);
  free(r);
}

static napi_value start(napi_env env, napi_callback_info info, int writing) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  double position;
  void *data;
  size_t length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok ||
      napi_get_value_double(env, argv[2], &position) != napi_ok)
    return fail(env, "expected (fd, Buffer, position)");
  // Positions are byte offsets below 2^53 (JavaScript's safe integers), never negative or fractional.
  if (fd < 0 || !(position >= 0) || position > 9007199254740991.0 || position != (double)(int64_t)position)
    return fail(env, "fd and position must be non-negative integers");
  request_t *r = calloc(1, sizeof *r);
  if (!r) return fail(env, "out of memory");
  r->fd = fd;
  r->writing = writing;
  r->data = data;
  r->length = length;
  r->position = (off_t)position;
  napi_create_reference(env, argv[1], 1, &r->buffer_ref);
  return queue_task(env, writing ? "chromogenic:write" : "chromogenic:read", execute, complete, r, &r->work, &r->deferred);
}

static napi_value read_at(napi_env env, napi_callback_info info) { return start(env, info, 0); }
static napi_value write_at(napi_env env, napi_callback_info info) { return start(env, info, 1); }

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"read", NULL, read_at, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, write_at, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
