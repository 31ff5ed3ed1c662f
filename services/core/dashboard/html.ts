/**
 * HTML built by the dashboard's pages: a tagged template that escapes every
 * value put into it, so text from slivers, nodes and peers can never become
 * markup. Only {@link Html} values (what this template returned) go in as
 * they are. Attributes are always written in double quotes, which the
 * escaping covers.
 */

/** A fragment of markup that is safe as it is (made by {@link html}). */
export class Html {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for an HTML element's content or a double-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c] as string);
}

function piece(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(piece).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** Markup with every interpolated value escaped (arrays are joined; `Html` values go in as they are). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] as string;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + (strings[i + 1] as string);
  return new Html(out);
}

/** The dashboard path of a slice's page (a URN is percent-encoded into one path segment). */
export function slicePath(urn: string): string {
  return `/slices/${encodeURIComponent(urn)}`;
}
