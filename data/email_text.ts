/**
 * Turns a raw RFC 822 e-mail into the plain text a text classifier sees:
 * the decoded `Subject:` followed by the readable body.
 *
 * - Headers are dropped, except `Subject:`, whose RFC 2047 encoded words
 *   (`=?charset?Q?...?=`, `=?charset?B?...?=`) are decoded.
 * - MIME: `multipart/*` is walked recursively; `text/*` parts are kept (of a
 *   `multipart/alternative`, only its `text/plain` part when it has one),
 *   `message/rfc822` parts are read as e-mails, everything else
 *   (attachments, images, signatures) is dropped. A message without a
 *   `Content-Type` is `text/plain`.
 * - `Content-Transfer-Encoding: quoted-printable` loses its soft line breaks
 *   (`=` at a line end) and has its `=XX` escapes decoded; `base64` is
 *   decoded; the bytes are read in the part's `charset` (UTF-8 when absent
 *   or unknown to `TextDecoder`, Windows-1252 when UTF-8 is invalid).
 * - HTML (a `text/html` part, or any text part with an `<html>` or `<body>`
 *   tag or at least 3 common formatting tags) loses comments, `<script>`
 *   and `<style>` elements and all tags; character references are
 *   decoded (numeric ones and the common named ones).
 * - Whitespace runs become one space; the result is trimmed.
 *
 * @module
 */

/** Headers of a message or MIME part: lower-cased name -> first value, unfolded. */
type Headers = Map<string, string>;

function splitMessage(raw: string): { headers: Headers; body: string } {
  const m = /\r?\n\r?\n/.exec(raw);
  const head = m ? raw.slice(0, m.index) : raw;
  const body = m ? raw.slice(m.index + m[0].length) : "";
  const headers: Headers = new Map();
  // The header that folded lines continue; undefined after a repeated one (only the first counts).
  let current: string | undefined;
  for (const line of head.split(/\r?\n/)) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      // A folded continuation of the previous header (RFC 5322 2.2.3).
      if (current !== undefined) headers.set(current, headers.get(current) + " " + line.trim());
      continue;
    }
    const colon = line.indexOf(":");
    // The mbox "From " separator line and other junk have no "name:" form.
    if (colon <= 0 || /\s/.test(line.slice(0, colon))) {
      current = undefined;
      continue;
    }
    const name = line.slice(0, colon).toLowerCase();
    if (headers.has(name)) current = undefined;
    else {
      headers.set(name, line.slice(colon + 1).trim());
      current = name;
    }
  }
  return { headers, body };
}

interface ContentType {
  type: string;
  params: Map<string, string>;
}

function contentType(value: string | undefined): ContentType {
  const params = new Map<string, string>();
  if (value === undefined) return { type: "text/plain", params };
  const semi = value.indexOf(";");
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const re = /;\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const m of value.matchAll(re)) {
    params.set(m[1].toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]);
  }
  return { type: type === "" ? "text/plain" : type, params };
}

function decodeBytes(bytes: Uint8Array, charset: string | undefined): string {
  let label = (charset ?? "utf-8").trim().toLowerCase();
  if (label === "" || label === "us-ascii" || label === "ascii") label = "utf-8";
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    decoder = new TextDecoder("utf-8", { fatal: true });
  }
  try {
    return decoder.decode(bytes);
  } catch {
    // Mislabelled 8-bit text: Windows-1252 reads every byte.
    return new TextDecoder("windows-1252").decode(bytes);
  }
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Decodes quoted-printable text (RFC 2045 6.7): soft line breaks removed,
 * runs of `=XX` escapes turned into bytes and read in `charset`. Characters
 * that are not escapes pass through unchanged, as do malformed escapes.
 *
 * @param text Quoted-printable text.
 * @param charset The part's charset (default UTF-8; Windows-1252 when the bytes are not UTF-8).
 * @returns The decoded text.
 *
 * @example
 * ```ts
 * import { decodeQuotedPrintable } from "./email_text.ts";
 *
 * console.log(decodeQuotedPrintable("caf=E9 au l=\nait", "iso-8859-1")); // "café au lait"
 * ```
 */
export function decodeQuotedPrintable(text: string, charset?: string): string {
  const s = text.replace(/=[ \t]*\r?\n/g, "");
  let out = "";
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf("=", i);
    if (eq < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, eq);
    const bytes: number[] = [];
    let j = eq;
    while (s.charCodeAt(j) === 61 && HEX.test(s.slice(j + 1, j + 3))) {
      bytes.push(parseInt(s.slice(j + 1, j + 3), 16));
      j += 3;
    }
    if (bytes.length === 0) {
      out += "=";
      i = eq + 1;
    } else {
      out += decodeBytes(new Uint8Array(bytes), charset);
      i = j;
    }
  }
  return out;
}

function decodeBase64(text: string): Uint8Array {
  const clean = text.replace(/[^A-Za-z0-9+/]/g, "");
  const usable = clean.length - (clean.length % 4 === 1 ? 1 : 0);
  const bin = atob(clean.slice(0, usable) + "==".slice(0, (4 - (usable % 4)) % 4));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * Decodes RFC 2047 encoded words in a header value; whitespace between two
 * of them is dropped.
 *
 * @param value A header value, e.g. a subject.
 * @returns The decoded value.
 *
 * @example
 * ```ts
 * import { decodeHeaderWords } from "./email_text.ts";
 *
 * console.log(decodeHeaderWords("=?utf-8?B?Q2Fmw6k=?= =?iso-8859-1?Q?_cr=E8me?=")); // "Café crème"
 * ```
 */
export function decodeHeaderWords(value: string): string {
  const re = /=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=/g;
  const joined = value.replace(/(\?=)\s+(?==\?[^?\s]+\?[QqBb]\?)/g, "$1");
  return joined.replace(re, (_, charset: string, enc: string, data: string) => {
    const cs = charset.split("*")[0];
    try {
      if (enc === "B" || enc === "b") return decodeBytes(decodeBase64(data), cs);
      return decodeQuotedPrintable(data.replaceAll("_", " "), cs);
    } catch {
      return data;
    }
  });
}

const ENTITIES: Record<string, string> = {
  nbsp: " ",
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  lsquo: "‘",
  rsquo: "’",
  ldquo: "“",
  rdquo: "”",
  bull: "•",
  middot: "·",
  pound: "£",
  euro: "€",
  yen: "¥",
  cent: "¢",
  deg: "°",
  eacute: "é",
  egrave: "è",
  aacute: "á",
  agrave: "à",
  iacute: "í",
  oacute: "ó",
  uacute: "ú",
  ntilde: "ñ",
  ccedil: "ç",
  uuml: "ü",
  ouml: "ö",
  auml: "ä",
  szlig: "ß",
  times: "×",
  laquo: "«",
  raquo: "»",
};

function decodeEntities(s: string): string {
  return s.replace(
    /&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,8});?/g,
    (m, e: string) => {
      if (e[0] === "#") {
        const cp = e[1] === "x" || e[1] === "X"
          ? parseInt(e.slice(2), 16)
          : parseInt(e.slice(1), 10);
        return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)
          ? String.fromCodePoint(cp)
          : " ";
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    },
  );
}

const HTML_DOC = /<(?:html|body)\b/i;
const HTML_TAG = /<\/?(?:p|br|div|font|table|tr|td|a|b|i|img|center|span)\b[^>]*>/gi;

function looksLikeHtml(s: string): boolean {
  if (HTML_DOC.test(s)) return true;
  let n = 0;
  for (const _ of s.matchAll(HTML_TAG)) if (++n >= 3) return true;
  return false;
}

/**
 * Removes HTML markup: comments, `<script>`/`<style>` elements and
 * every tag (replaced by a space); decodes character references.
 *
 * @param html HTML text.
 * @returns The text, with spaces where tags were.
 *
 * @example
 * ```ts
 * import { stripHtml } from "./email_text.ts";
 *
 * console.log(stripHtml("<p>Fish &amp; chips</p>").trim()); // "Fish & chips"
 * ```
 */
export function stripHtml(html: string): string {
  const s = html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, " ")
    .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<[!/?]?[A-Za-z][^>]*>/g, " ");
  return decodeEntities(s);
}

function partText(headers: Headers, body: string, depth: number): string {
  const ct = contentType(headers.get("content-type"));
  const cte = (headers.get("content-transfer-encoding") ?? "").trim().toLowerCase();
  const charset = ct.params.get("charset");
  if (ct.type.startsWith("multipart/")) {
    const boundary = ct.params.get("boundary");
    const parts = boundary === undefined || depth > 8 ? [] : splitMultipart(body, boundary);
    if (parts.length === 0) return cleanText(body, "text/plain");
    const msgs = parts.map(splitMessage);
    if (ct.type === "multipart/alternative") {
      // The richest rendering: spam often pairs its HTML with a stub text/plain part.
      const texts = msgs.map((m) => partText(m.headers, m.body, depth + 1));
      return texts.reduce((best, t) => t.trim().length > best.trim().length ? t : best, "");
    }
    return msgs.map((m) => partText(m.headers, m.body, depth + 1)).filter((t) => t).join("\n");
  }
  if (ct.type === "message/rfc822") {
    return depth > 8 ? "" : messageText(body, depth + 1);
  }
  if (!ct.type.startsWith("text/")) return "";
  let text = body;
  if (cte === "quoted-printable") text = decodeQuotedPrintable(body, charset);
  else if (cte === "base64") text = decodeBytes(decodeBase64(body), charset);
  return cleanText(text, ct.type);
}

function cleanText(text: string, type: string): string {
  return type === "text/html" || looksLikeHtml(text) ? stripHtml(text) : text;
}

/** The parts of a multipart body: the text between `--boundary` lines, up to `--boundary--`. */
function splitMultipart(body: string, boundary: string): string[] {
  const parts: string[] = [];
  const delim = `--${boundary}`;
  let current: string[] | undefined;
  for (const line of body.split(/\r?\n/)) {
    if (line.startsWith(delim)) {
      const rest = line.slice(delim.length).trimEnd();
      if (rest === "" || rest === "--") {
        if (current) parts.push(current.join("\n"));
        if (rest === "--") return parts;
        current = [];
        continue;
      }
    }
    current?.push(line);
  }
  if (current) parts.push(current.join("\n"));
  return parts;
}

/**
 * The text of an e-mail for a classifier: decoded subject, a newline, then
 * the readable body (see the module documentation for the rules), with
 * whitespace runs collapsed to single spaces.
 *
 * @param raw The whole message, headers included (mbox `From ` line allowed).
 * @returns Subject and body as one line of text.
 *
 * @example
 * ```ts
 * import { emailToText } from "./email_text.ts";
 *
 * const raw = "Subject: =?iso-8859-1?Q?caf=E9?=\nContent-Type: text/html\n" +
 *   "Content-Transfer-Encoding: quoted-printable\n\n<p>Hello=\n there &amp; =E9</p>";
 * console.log(emailToText(raw)); // "café Hello there & é"
 * ```
 */
export function emailToText(raw: string): string {
  return messageText(raw, 0);
}

function messageText(raw: string, depth: number): string {
  const { headers, body } = splitMessage(raw);
  const subject = decodeHeaderWords(headers.get("subject") ?? "");
  const text = `${subject}\n${partText(headers, body, depth)}`;
  return text.replace(/\s+/g, " ").trim();
}
