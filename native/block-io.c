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
// zero(fd, position, length)  -> Promise<void>    the range reads as zeros afterwards (see zero_range)
// dropCleanCache(fd)          -> Promise<number>  the file's pages dropped from the page cache if none is dirty:
//                                                 the bytes dropped, or -1 when left alone (see drop_clean_cache)
// Errors reject with an Error carrying `code` (e.g. "EIO"), `errno` and `syscall`, like node:fs.
// The caller must not touch the buffer until the promise settles (a reference keeps it alive).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>
#include "napi-common.h"

#define STEP ((size_t)1 << 20)

enum op { OP_READ, OP_WRITE, OP_ZERO, OP_DROP };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref;
  int fd;
  enum op op;
  uint8_t *data;
  size_t length;
  off_t position;
  size_t done;
  double result;
  int error;
} request_t;

/** Continues the request's reads or writes until done or failed. */
static void transfer(request_t *r) {
  while (r->done < r->length) {
    const size_t want = r->length - r->done < STEP ? r->length - r->done : STEP;
    const off_t at = r->position + (off_t)r->done;
    const ssize_t n = r->op == OP_READ ? pread(r->fd, r->data + r->done, want, at)
                                       : pwrite(r->fd, r->data + r->done, want, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      r->error = errno;
      return;
    }
    if (n == 0) {
      // End of file for a read; a write of zero bytes would loop forever, so it is an error.
      if (r->op == OP_WRITE) r->error = EIO;
      return;
    }
    r->done += (size_t)n;
  }
}

/** What zero_range writes where the kernel cannot zero a range itself. */
static const uint8_t zeros[STEP];

/** Writes `length` zero bytes at `position`, as 1 MiB writes; 0 or the errno that stopped it. */
static int write_zeros(int fd, off_t position, size_t length) {
  size_t done = 0;
  while (done < length) {
    const size_t want = length - done < STEP ? length - done : STEP;
    const ssize_t n = pwrite(fd, zeros, want, position + (off_t)done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += (size_t)n;
  }
  return 0;
}

/** fallocate(), retried on EINTR: 0, or the errno. */
static int allocate(int fd, int mode, off_t position, off_t length) {
  while (fallocate(fd, mode, position, length) < 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

/** Alignment a block device's fallocate accepts whatever its logical block size (512 or 4096). */
#define DEVICE_ALIGN ((off_t)4096)

/**
 * Makes the range read as zeros: an output written in place (a block device, an existing file) still holds the
 * old bytes wherever the image leaves a hole. The kernel does it without moving data where it can: a regular file
 * gets a hole punched (it stays sparse, as a new output would be), a block device is asked to zero the range (a
 * loop device passes that on to its file, an SSD may unmap it), in whole 4 KiB blocks with the unaligned ends
 * written. Where neither is supported, zeros are written as 1 MiB writes.
 */
static void zero_range(request_t *r) {
  struct stat st;
  if (fstat(r->fd, &st) < 0) {
    r->error = errno;
    return;
  }
  const off_t start = r->position, end = r->position + (off_t)r->length;
  off_t from = start, to = end;
  int mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
  if (S_ISBLK(st.st_mode)) {
    mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE;
    from = (start + DEVICE_ALIGN - 1) / DEVICE_ALIGN * DEVICE_ALIGN;
    to = end / DEVICE_ALIGN * DEVICE_ALIGN;
  }
  int err = 0;
  if (from < to) {
    err = allocate(r->fd, mode, from, to - from);
    if (err == EOPNOTSUPP || err == EINVAL || err == ENODEV || err == ENOSYS) {
      from = to = end; // not supported here: write the whole range
      err = 0;
    }
  } else {
    from = to = end;
  }
  if (!err && start < from) err = write_zeros(r->fd, start, (size_t)(from - start));
  if (!err && to < end) err = write_zeros(r->fd, to, (size_t)(end - to));
  if (err) r->error = err;
  else r->done = r->length;
}

// cachestat(2), Linux 6.5: the same number on every architecture; the C library has no wrapper yet.
#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif
struct cachestat_range_arg {
  uint64_t off, len;
};
struct cachestat_result {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/**
 * Drops the file's pages from the page cache, but only when none is dirty or under writeback (cachestat says):
 * for the file an output is about to replace, whose pages would otherwise stay cached while the new one is
 * written. Dropping clean pages loses nothing (the file stays whole on disk) and hands their memory back at once;
 * POSIX_FADV_DONTNEED on dirty pages would first start writing out a file about to be deleted, so such a file,
 * or one on a kernel without cachestat, is left alone. `done` is the bytes dropped, or -1 for left alone.
 */
static void drop_clean_cache(request_t *r) {
  struct cachestat_range_arg range = {0, 0}; // to the end of the file
  struct cachestat_result cs;
  if (syscall(__NR_cachestat, r->fd, &range, &cs, 0) < 0 || cs.nr_dirty > 0 || cs.nr_writeback > 0) {
    r->result = -1;
    return;
  }
  const int err = posix_fadvise(r->fd, 0, 0, POSIX_FADV_DONTNEED);
  if (err) r->error = err;
  else r->result = (double)cs.nr_cache * (double)sysconf(_SC_PAGESIZE);
}

static void execute(napi_env env, void *arg) {
  (void)env;
  request_t *r = arg;
  if (r->op == OP_ZERO) zero_range(r);
  else if (r->op == OP_DROP) drop_clean_cache(r);
  else transfer(r);
}

static void complete(napi_env env, napi_status status, void *arg) {
  request_t *r = arg;
  const char *call = r->op == OP_READ ? "read" : r->op == OP_DROP ? "fadvise" : "write";
  if (status == napi_ok && r->error == 0) {
    napi_value result;
    if (r->op == OP_READ) napi_create_double(env, (double)r->done, &result);
    else if (r->op == OP_DROP) napi_create_double(env, r->result, &result);
    else napi_get_undefined(env, &result);
    napi_resolve_deferred(env, r->deferred, result);
  } else {
    // A task libuv cancelled never ran: ECANCELED, as node:fs reports it.
    napi_value error = errno_error(env, r->error ? r->error : ECANCELED, call);
    napi_reject_deferred(env, r->deferred, error);
  }
  if (r->buffer_ref) napi_delete_reference(env, r->buffer_ref);
  napi_delete_async_work(env, r->work);
  free(r);
}

/** True when `position` is a byte offset JavaScript holds exactly: below 2^53, never negative or fractional. */
static int valid_offset(double position) {
  return position >= 0 && position <= 9007199254740991.0 && position == (double)(int64_t)position;
}

static napi_value start(napi_env env, napi_callback_info info, enum op op) {
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
  if (fd < 0 || !valid_offset(position)) return fail(env, "fd and position must be non-negative integers");
  request_t *r = calloc(1, sizeof *r);
  if (!r) return fail(env, "out of memory");
  r->fd = fd;
  r->op = op;
  r->data = data;
  r->length = length;
  r->position = (off_t)position;
  napi_create_reference(env, argv[1], 1, &r->buffer_ref);
  return queue_task(env, op == OP_WRITE ? "chromogenic:write" : "chromogenic:read", execute, complete, r, &r->work,
                    &r->deferred);
}

static napi_value read_at(napi_env env, napi_callback_info info) { return start(env, info, OP_READ); }
static napi_value write_at(napi_env env, napi_callback_info info) { return start(env, info, OP_WRITE); }

static napi_value zero_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  double position, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &position) != napi_ok ||
      napi_get_value_double(env, argv[2], &length) != napi_ok)
    return fail(env, "expected (fd, position, length)");
  if (fd < 0 || !valid_offset(position) || !valid_offset(length) || length < 1)
    return fail(env, "fd, position and length must be non-negative integers, length at least 1");
  request_t *r = calloc(1, sizeof *r);
  if (!r) return fail(env, "out of memory");
  r->fd = fd;
  r->op = OP_ZERO;
  r->length = (size_t)length;
  r->position = (off_t)position;
  return queue_task(env, "chromogenic:zero", execute, complete, r, &r->work, &r->deferred);
}

static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return fail(env, "expected (fd)");
  request_t *r = calloc(1, sizeof *r);
  if (!r) return fail(env, "out of memory");
  r->fd = fd;
  r->op = OP_DROP;
  return queue_task(env, "chromogenic:fadvise", execute, complete, r, &r->work, &r->deferred);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"read", NULL, read_at, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, write_at, NULL, NULL, NULL, napi_default, NULL},
      {"zero", NULL, zero_at, NULL, NULL, NULL, napi_default, NULL},
      {"dropCleanCache", NULL, drop_cache, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
