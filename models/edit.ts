// Edits to models.yaml that keep the file as its authors wrote it: the document is parsed for
// node positions and only the bytes of the changed scalars (or the appended entries) change;
// order, comments, quoting, blank lines and indentation stay exactly as they were.
import { isMap, isScalar, isSeq, parseDocument, stringify, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import { CatalogError, parseCatalog } from './catalog.ts';

export interface NewEntry {
  name: string;
  sha: string;
  tag: string;
}

interface Splice {
  start: number;
  end: number;
  text: string;
}

function applySplices(text: string, splices: Splice[]): string {
  let out = text;
  for (const s of [...splices].sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.text + out.slice(s.end);
  return out;
}

/** A scalar written so YAML reads it back as this string (plain when that is safe). */
function scalarText(value: string): string {
  return stringify(value, { lineWidth: 0 }).trimEnd();
}

function modelsList(text: string, file: string): { doc: ReturnType<typeof parseDocument>; list: YAMLSeq } {
  const { problems } = parseCatalog(text, file);
  if (problems.length > 0) throw new CatalogError(problems);
  const doc = parseDocument(text);
  const list = (doc.contents as YAMLMap).get('models', true);
  if (!isSeq(list)) throw new Error('unreachable: a valid catalog has a models list');
  return { doc, list };
}

/**
 * Set the sha of the entries at the given positions in the models list (0-based, the order of
 * parseCatalog's models), touching nothing but those scalars. Quoted shas stay quoted.
 */
export function setShas(text: string, shas: Map<number, string>, file = 'models/models.yaml'): string {
  const { list } = modelsList(text, file);
  const splices: Splice[] = [];
  list.items.forEach((item, index) => {
    const sha = shas.get(index);
    if (sha === undefined) return;
    const node = (item as YAMLMap).get('sha', true) as Node;
    if (!isScalar(node) || !node.range) return;
    const [start, end] = node.range;
    if (String(node.value) === sha) return;
    const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    splices.push(quoted ? { start: start + 1, end: end - 1, text: sha } : { start, end, text: scalarText(sha) });
  });
  return applySplices(text, splices);
}

/** Append entries at the end of the models list, in the layout of its last entry. */
export function appendEntries(text: string, entries: NewEntry[], file = 'models/models.yaml'): string {
  if (entries.length === 0) return text;
  const { doc, list } = modelsList(text, file);
  const last = list.items.at(-1) as Node | undefined;
  if (list.flow || !last?.range) {
    // An empty or flow-style list has no block layout to follow: write it as a block list.
    list.flow = false;
    for (const e of entries) list.add(doc.createNode({ name: e.name, sha: e.sha, tag: e.tag }));
    return doc.toString({ lineWidth: 0 });
  }
  const column = (offset: number) => offset - (text.lastIndexOf('\n', offset - 1) + 1);
  const dashCol = column(text.lastIndexOf('-', last.range[0] - 1));
  const keyCol = isMap(last) && !last.flow ? column(last.range[0]) : dashCol + 2;
  const pad = (n: number) => ' '.repeat(n);
  const block = entries
    .map((e) => `\n${pad(dashCol)}-${pad(keyCol - dashCol - 1)}name: ${scalarText(e.name)}\n${pad(keyCol)}sha: ${scalarText(e.sha)}\n${pad(keyCol)}tag: ${scalarText(e.tag)}`)
    .join('');
  // After the last entry's line, so a comment ending that line stays with it.
  const lastValue = isMap(last) && !last.flow ? ((last.items.at(-1)?.value ?? last.items.at(-1)?.key) as Node | null) : last;
  const lineEnd = text.indexOf('\n', lastValue?.range?.[1] ?? last.range[1]);
  const at = lineEnd < 0 ? text.length : lineEnd;
  return applySplices(text, [{ start: at, end: at, text: block }]);
}
