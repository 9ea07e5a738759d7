/**
 * Runs an async step over a sequence with up to `concurrency` items in flight and yields the results in the
 * sequence's order: what lets gzip use every core (each chunk deflated on libuv's threadpool) while the digests
 * and the cipher after it, which must see the bytes in order, take them one by one.
 */
export async function* orderedParallel<T, R>(
  items: AsyncIterable<T> | Iterable<T>,
  step: (item: T) => Promise<R>,
  concurrency: number,
): AsyncGenerator<R> {
  const running: Promise<R>[] = [];
  try {
    for await (const item of items) {
      const result = step(item);
      // Marked handled at once: a failure is thrown when its turn comes, not as an unhandled rejection meanwhile.
      result.catch(() => undefined);
      running.push(result);
      if (running.length >= concurrency) yield await running.shift()!;
    }
    while (running.length) yield await running.shift()!;
  } finally {
    // Stopped early (an error downstream): let what is still running end before the caller moves on.
    await Promise.allSettled(running);
  }
}
