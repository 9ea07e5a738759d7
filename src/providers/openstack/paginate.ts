/**
 * A paginator as a generic async iterator (the AWS SDK's `paginateX` shape): it fetches a page, yields its
 * items, and follows the page's "next" link until there is none. Callers stop early by breaking the loop.
 */
export interface Page<T> {
  readonly items: readonly T[];
  /** Where the next page is, or undefined on the last page. */
  readonly next?: string;
}

export async function* paginate<T>(first: string, fetchPage: (link: string) => Promise<Page<T>>): AsyncGenerator<T> {
  let link: string | undefined = first;
  const seen = new Set<string>();
  while (link !== undefined) {
    // A server that returned the same link twice would loop forever.
    if (seen.has(link)) return;
    seen.add(link);
    const page: Page<T> = await fetchPage(link);
    yield* page.items;
    link = page.items.length > 0 ? page.next : undefined;
  }
}
