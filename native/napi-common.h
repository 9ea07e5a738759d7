// What the project's addons share (each defines _GNU_SOURCE before its first include, for strerrorname_np): argument errors thrown on the caller's thread, system errors shaped as node:fs
// shapes them, and the promise + async work pair every threadpool task starts with.
#ifndef CHROMOGENIC_NAPI_COMMON_H
#define CHROMOGENIC_NAPI_COMMON_H
#include <stdio.h>
#include <string.h>
#include <node_api.h>

/** Throws a TypeError (bad arguments, found before any work is queued) and returns NULL for the caller. */
static inline napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/**
 * An Error for system error `err` (a positive errno) from `syscall`, as node:fs makes them: `code` is the errno's
 * name ("ENOSPC", from the C library's own table: the names node:fs uses), `errno` its negative value, and the
 * message "CODE: description, syscall".
 */
static inline napi_value errno_error(napi_env env, int err, const char *syscall) {
  const char *name = strerrorname_np(err);
  const char *code = name ? name : "UNKNOWN";
  char text[200];
  snprintf(text, sizeof text, "%s: %s, %s", code, strerror(err), syscall);
  napi_value message, code_value, error, errno_value, syscall_value;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_error(env, code_value, message, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

/**
 * Queues `execute` (on a threadpool thread) and then `complete` (on the JavaScript thread) for `task`, and
 * returns the promise `complete` must settle through `*deferred`. `complete` deletes `*work` and frees `task`.
 */
static inline napi_value queue_task(napi_env env, const char *name, napi_async_execute_callback execute,
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
