// HTTP-dates (RFC 9110 §5.6.7) and preconditions (§13), on generated dates and headers: the three
// date forms a recipient must accept give the same instant, anything else is no date.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseHttpDate, preconditions } from '../registry/conditional.ts';

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** `ms` (whole seconds) in each form: IMF-fixdate, RFC 850 (two-digit year), asctime. */
function forms(ms: number): { imf: string; rfc850: string; asctime: string } {
  const d = new Date(ms);
  const time = `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  const day = DAYS[d.getUTCDay()];
  const month = MONTHS[d.getUTCMonth()];
  const year = String(d.getUTCFullYear()).padStart(4, '0');
  return {
    imf: `${day.slice(0, 3)}, ${two(d.getUTCDate())} ${month} ${year} ${time} GMT`,
    rfc850: `${day}, ${two(d.getUTCDate())}-${month}-${year.slice(2)} ${time} GMT`,
    asctime: `${day.slice(0, 3)} ${month} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} ${year}`,
  };
}

describe('HTTP-dates', () => {
  test('generated instants from year 1 to 9999: IMF-fixdate and asctime give them back; RFC 850 within 50 years of now', () => {
    const now = Date.UTC(2026, 11, 1);
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const low = new Date(0).setUTCFullYear(1, 0, 1); // not Date.UTC: it reads year 1 as 1901
    for (let i = 0; i < 2000; i++) {
      const ms = Math.floor((low + next() * (Date.UTC(9999, 11, 31) - low)) / 1000) * 1000;
      const { imf, rfc850, asctime } = forms(ms);
      assert.equal(parseHttpDate(imf, now), ms, imf);
      assert.equal(parseHttpDate(` ${imf} `, now), ms, 'surrounding whitespace');
      assert.equal(parseHttpDate(asctime, now), ms, asctime);
      const year = new Date(ms).getUTCFullYear();
      if (year > 1976 && year <= 2076) assert.equal(parseHttpDate(rfc850, now), ms, rfc850);
    }
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Friday, 06-Nov-76 08:49:37 GMT', now), Date.UTC(2076, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Saturday, 06-Nov-77 08:49:37 GMT', now), Date.UTC(1977, 10, 6, 8, 49, 37), 'more than 50 years ahead: the past century');
    assert.equal(parseHttpDate('Tue, 31 Dec 2030 23:59:60 GMT', now), Date.UTC(2030, 11, 31, 23, 59, 59), 'a leap second');
  });

  test('anything else is no date: other formats, impossible days and times, wrong case, other zones', () => {
    for (const text of [
      '', '2099', '2099-01-01', '2099-01-01T00:00:00Z', 'Dec 2099', 'tomorrow 2099', '1700000000',
      'Thu, 31 Feb 2030 00:00:00 GMT', 'Mon, 30 Feb 2032 00:00:00 GMT', 'Thu, 01 Jan 2099 24:00:00 GMT', 'Thu, 01 Jan 2099 23:60:00 GMT',
      'Thu, 01 Jan 2099 00:00:00 UTC', 'Thu, 01 Jan 2099 00:00:00 +0000', 'thu, 01 jan 2099 00:00:00 GMT', 'Thu, 1 Jan 2099 00:00:00 GMT',
      'Thu, 01 Jan 99 00:00:00 GMT', 'Sat, 01 Jan 275000 00:00:00 GMT', 'Thursday, 01-Jan-2099 00:00:00 GMT', 'Thu Jan 1 00:00:00 2099',
    ]) {
      assert.equal(parseHttpDate(text), undefined, JSON.stringify(text));
    }
  });
});

describe('preconditions (RFC 9110 §13.2.2)', () => {
  const etag = '"sha256:aa"';
  const modified = new Date(Date.UTC(2026, 0, 1));
  const date = (ms: number) => new Date(ms).toUTCString();
  const at = modified.getTime();
  test('every combination of the four headers, evaluated in the RFC order', () => {
    const values = {
      'if-match': [undefined, etag, '*', '"sha256:bb"', `W/${etag}`],
      'if-unmodified-since': [undefined, date(at), date(at - 1000), 'junk'],
      'if-none-match': [undefined, etag, `W/${etag}`, '*', '"sha256:bb"'],
      'if-modified-since': [undefined, date(at), date(at - 1000), 'junk'],
    };
    for (const im of values['if-match'])
      for (const ius of values['if-unmodified-since'])
        for (const inm of values['if-none-match'])
          for (const ims of values['if-modified-since']) {
            const headers: Record<string, string | undefined> = { 'if-match': im, 'if-unmodified-since': ius, 'if-none-match': inm, 'if-modified-since': ims };
            let expected: 304 | 412 | undefined;
            if (im !== undefined ? !(im === etag || im === '*') : ius === date(at - 1000)) expected = 412;
            else if (inm !== undefined) expected = inm === '"sha256:bb"' ? undefined : 304;
            else expected = ims === date(at) ? 304 : undefined;
            assert.equal(preconditions((h) => headers[h], etag, modified), expected, JSON.stringify(headers));
          }
  });
});
