// Conditional requests (RFC 9110 §13) for content-addressed answers: the ETag is the digest, so
// it never changes under a URL that names it; Last-Modified is when the store got the blob.
// Evaluated in the RFC's order (§13.2.2): If-Match, else If-Unmodified-Since (412 when false);
// then If-None-Match, else If-Modified-Since (304 when false); If-Range is the caller's, with a
// Range. A date that is not an HTTP-date is ignored, as §13.1.3 and §13.1.4 require.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAY = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/**
 * An HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms every
 * recipient must accept) as milliseconds since the epoch; undefined for anything else (other
 * date formats, an impossible day or time). A two-digit RFC 850 year more than 50 years ahead of
 * `now` is taken as the past century's.
 */
export function parseHttpDate(value: string, now = Date.now()): number | undefined {
  const text = value.trim();
  let parts: { day: string; month: string; year: number; time: string[] };
  let match: RegExpExecArray | null;
  if ((match = IMF_FIXDATE.exec(text))) parts = { day: match[1], month: match[2], year: Number(match[3]), time: match.slice(4, 7) };
  else if ((match = RFC850_DATE.exec(text))) {
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(match[3]);
    if (year > thisYear + 50) year -= 100;
    parts = { day: match[1], month: match[2], year, time: match.slice(4, 7) };
  } else if ((match = ASCTIME_DATE.exec(text))) parts = { day: match[2], month: match[1], year: Number(match[6]), time: match.slice(3, 6) };
  else return undefined;
  const [hours, minutes, seconds] = parts.time.map(Number);
  const day = Number(parts.day);
  const month = MONTHS.indexOf(parts.month);
  if (hours > 23 || minutes > 59 || seconds > 60) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(parts.year, month, day); // not Date.UTC: it reads years 0-99 as 1900-1999
  date.setUTCHours(hours, minutes, Math.min(seconds, 59), 0); // a leap second as :59
  // A day past the month's end (31 Feb) rolls over into the next month: such a day is no date.
  return date.getUTCDate() === day && date.getUTCMonth() === month ? date.getTime() : undefined;
}

/** If-None-Match / If-Match: `*`, or a list of entity-tags one of which is `etag` (weak comparison when `weak`). */
export function etagListMatches(header: string, etag: string, weak: boolean): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === etag || (weak && tag.replace(/^W\//, '') === etag);
  });
}

/**
 * RFC 9110 §13.1.5, If-Range: an entity-tag matches by strong comparison (a weak tag never does);
 * an HTTP-date only when it is exactly the Last-Modified (`modified`, whole seconds; none: no
 * date matches). A later date is no match: the client's copy is not known to be this one.
 */
export function ifRangeMatches(value: string, etag: string, modified: Date | undefined): boolean {
  const text = value.trim();
  if (text.startsWith('"') || text.startsWith('W/')) return text === etag;
  return modified !== undefined && parseHttpDate(text) === modified.getTime();
}

/**
 * The preconditions of a GET or HEAD of a representation with `etag` and, when it has one,
 * Last-Modified `modified` (whole seconds): 412 (Precondition Failed), 304 (Not Modified), or
 * undefined to answer it. `header` reads a request header by its lower-case name.
 */
export function preconditions(header: (name: string) => string | undefined, etag: string, modified?: Date): 304 | 412 | undefined {
  const ifMatch = header('if-match');
  if (ifMatch !== undefined) {
    if (!etagListMatches(ifMatch, etag, false)) return 412;
  } else {
    const since = dateHeader(header('if-unmodified-since'));
    if (since !== undefined && modified !== undefined && modified.getTime() > since) return 412;
  }
  const ifNoneMatch = header('if-none-match');
  if (ifNoneMatch !== undefined) return etagListMatches(ifNoneMatch, etag, true) ? 304 : undefined;
  const since = dateHeader(header('if-modified-since'));
  return since !== undefined && modified !== undefined && modified.getTime() <= since ? 304 : undefined;
}

/** A date header's value as ms since the epoch; undefined when absent or not an HTTP-date. */
export function dateHeader(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseHttpDate(value);
}
