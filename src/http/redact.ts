/** Masks secrets that can travel in a URL's query, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|password|_csrf)=)[^&#]*/gi, '$1[redacted]');
}
