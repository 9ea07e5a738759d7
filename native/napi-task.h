// Shared by the addons that run one task on libuv's threadpool and settle a promise with its result: argument
// errors thrown on the caller's thread, and the promise + async work pair every such task starts with.
#ifndef CHROMOGENIC_NAPI_TASK_H
#define CHROMOGENIC_NAPI_TASK_H
#include <node_api.h>

/** Throws a TypeError (bad arguments, found before any work is queued) and returns NULL for the caller. */
static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/**
 * Queues `execute` (on a threadpool thread) and then `complete` (on the JavaScript thread) for `task`, and
 * returns the promise `complete` must settle through `*deferred`. `complete` deletes `*work` and frees `task`.
 */
static napi_value queue_task(napi_env env, const char *name, napi_async_execute_callback execute,
                             napi_async_complete_callback complete, void *task, napi_async_work *work,
                             napi_deferred *deferred) {
  napi_value promise, resource_name;
  napi_create_promise(env, deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  napi_create_async_work(env, NULL, resource_name, execute, complete, task, work);
  napi_queue_async_work(env, *work);
  return promise;
}
#endif
