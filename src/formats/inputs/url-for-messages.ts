/**
 * The URL as messages show it: no user information, query or fragment, which may carry credentials (an S3
 * presigned URL's signature, a user's password).
 */
export function urlForMessages(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}
