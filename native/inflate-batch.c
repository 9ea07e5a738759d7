// Node-API addon: inflates a batch of raw deflate streams (qcow2 compressed clusters) in ONE threadpool task,
// each straight into its place in the caller's buffer.
//
// Why: node:zlib's one-shot inflateRaw builds a stream object per cluster, allocates a fresh output buffer
// for it and costs a threadpool round trip. For the benchmark's zlib qcow2 (873 MiB of data in 64 KiB
// clusters) that is ~14,000 objects and round trips and 873 MiB of short-lived buffers outside V8's heap,
// which V8 counts towards its old-generation limit: with the CLI's ~10 MB heap they forced a full
// mark-compact every 20–60 MiB. Here a batch allocates nothing and its output lands where the read wants it.
//
// inflateBatch(input, plan, output, results) -> Promise<string | null>
//   plan:    Float64Array, 4 numbers per stream: input start, input length, output start, output length
//   results: Int32Array, one entry per stream: the bytes the stream decompressed to when it ended within
//            its output length; -1 when it holds more than that; -2 when it is not valid deflate data (the
//            promise then resolves to zlib's message for the first such stream); -3 when the input ends
//            before the stream does. Trailing input after the end of a stream is ignored (qemu records a
//            compressed cluster's length only to 512-byte precision).
// The caller must not touch input, output or results until the promise settles (references keep them alive).
// zlib comes from the Node.js executable, which exports it (Chromium's zlib, with its fast inflate): the
// addon is built against Node's own zlib.h and not linked with -lz. Each threadpool thread keeps one
// inflate state for the life of the process, reset per stream.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <node_api.h>
#include "napi-common.h"

enum { MORE_THAN_ROOM = -1, NOT_DEFLATE = -2, TRUNCATED = -3 };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[4];
  const uint8_t *input;
  uint8_t *output;
  const double *plan;
  int32_t *results;
  size_t count;
  const char *message;  // zlib's message for the first stream that is not deflate data (a static string)
  const char *error;    // the batch could not run at all
} batch_t;

static __thread z_stream *thread_stream;

/** Inflates one stream into exactly `room` bytes at `out`; returns its entry for `results`. */
static int32_t inflate_one(z_stream *s, const uint8_t *in, size_t in_length, uint8_t *out, size_t room,
                           const char **message) {
  if (inflateReset(s) != Z_OK) return NOT_DEFLATE;
  s->next_in = (Bytef *)in;
  s->avail_in = (uInt)in_length;
  s->next_out = out;
  s->avail_out = (uInt)room;
  int r = inflate(s, Z_FINISH);
  if (r == Z_STREAM_END) return (int32_t)(room - s->avail_out);
  if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_STREAM_ERROR) {
    *message = s->msg ? s->msg : "invalid data";
    return NOT_DEFLATE;
  }
  if (s->avail_out > 0) return TRUNCATED;  // the input ran out first
  // The output is full: the stream must end right here, with no byte more.
  uint8_t extra;
  s->next_out = &extra;
  s->avail_out = 1;
  r = inflate(s, Z_FINISH);
  if (r == Z_STREAM_END && s->avail_out == 1) return (int32_t)room;
  if (s->avail_out == 0) return MORE_THAN_ROOM;
  if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_STREAM_ERROR) {
    *message = s->msg ? s->msg : "invalid data";
    return NOT_DEFLATE;
  }
  return TRUNCATED;
}

static void execute(napi_env env, void *data) {
  (void)env;
  batch_t *b = data;
  if (!thread_stream) {
    z_stream *s = calloc(1, sizeof *s);
    // Window bits -15: raw deflate, any window size (qemu writes 4 KiB windows, -12).
    if (!s || inflateInit2(s, -15) != Z_OK) {
      free(s);
      b->error = "zlib: out of memory for an inflate state";
      return;
    }
    thread_stream = s;
  }
  for (size_t i = 0; i < b->count; i++) {
    const double *p = b->plan + 4 * i;
    const char *message = NULL;
    b->results[i] = inflate_one(thread_stream, b->input + (size_t)p[0], (size_t)p[1], b->output + (size_t)p[2],
                                (size_t)p[3], &message);
    if (message && !b->message) b->message = message;
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  batch_t *b = data;
  if (status == napi_ok && !b->error) {
    napi_value value;
    if (b->message)
      napi_create_string_utf8(env, b->message, NAPI_AUTO_LENGTH, &value);
    else
      napi_get_null(env, &value);
    napi_resolve_deferred(env, b->deferred, value);
  } else {
    napi_value message, error;
    napi_create_string_utf8(env, b->error ? b->error : "inflate batch cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, b->deferred, error);
  }
  for (int i = 0; i < 4; i++) napi_delete_reference(env, b->refs[i]);
  napi_delete_async_work(env, b->work);
  free(b);
}

/** A plan entry as a byte count: a whole number within [0, limit]. */
static int valid_count(double v, size_t limit) { return v >= 0 && v <= (double)limit && v == (double)(size_t)v; }

static napi_value inflate_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4)
    return fail(env, "expected (input, plan, output, results)");
  void *input, *output, *plan, *results;
  size_t input_length, output_length, plan_length, result_count, byte_offset;
  napi_typedarray_type plan_type, result_type;
  napi_value array_buffer;
  if (napi_get_buffer_info(env, argv[0], &input, &input_length) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &plan_type, &plan_length, &plan, &array_buffer, &byte_offset) !=
          napi_ok ||
      plan_type != napi_float64_array || napi_get_buffer_info(env, argv[2], &output, &output_length) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], &result_type, &result_count, &results, &array_buffer, &byte_offset) !=
          napi_ok ||
      result_type != napi_int32_array)
    return fail(env, "expected (Buffer, Float64Array, Buffer, Int32Array)");
  if (plan_length != 4 * result_count) return fail(env, "plan must hold 4 numbers per entry of results");
  // Every range is checked here, on the caller's thread: the task itself trusts the plan.
  const double *p = plan;
  for (size_t i = 0; i < result_count; i++, p += 4) {
    if (!valid_count(p[0], input_length) || !valid_count(p[1], input_length - (size_t)p[0]) ||
        !valid_count(p[2], output_length) || !valid_count(p[3], output_length - (size_t)p[2]) ||
        p[1] > (double)UINT32_MAX || p[3] > (double)INT32_MAX)
      return fail(env, "a plan entry lies outside its buffer");
  }
  batch_t *b = calloc(1, sizeof *b);
  if (!b) return fail(env, "out of memory");
  b->input = input;
  b->output = output;
  b->plan = plan;
  b->results = results;
  b->count = result_count;
  for (int i = 0; i < 4; i++) napi_create_reference(env, argv[i], 1, &b->refs[i]);
  return queue_task(env, "chromogenic:inflateBatch", execute, complete, b, &b->work, &b->deferred);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"inflateBatch", NULL, inflate_batch, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
