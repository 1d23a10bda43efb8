// A small INI reader with the subset of Python configparser's syntax that the seed's clone.ini uses:
// [sections], `key = value` or `key: value`, full-line `#`/`;` comments, blank lines.
export interface IniEntry {
  value: string;
  line: number;
}

export type IniDocument = Map<string, Map<string, IniEntry>>;

export class IniSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

export function parseIni(text: string): IniDocument {
  const doc: IniDocument = new Map();
  let section: Map<string, IniEntry> | undefined;
  let sectionName = '';
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      sectionName = header[1]!.trim();
      if (doc.has(sectionName)) throw new IniSyntaxError(lineNo, `section [${sectionName}] appears twice`);
      section = new Map();
      doc.set(sectionName, section);
      return;
    }
    const sep = line.search(/[=:]/);
    if (sep <= 0) throw new IniSyntaxError(lineNo, `expected "key = value", got "${line}"`);
    if (!section) throw new IniSyntaxError(lineNo, `"${line}" is outside any [section]`);
    const key = line.slice(0, sep).trim().toLowerCase();
    const value = line.slice(sep + 1).trim();
    if (section.has(key)) throw new IniSyntaxError(lineNo, `key "${key}" appears twice in [${sectionName}]`);
    section.set(key, { value, line: lineNo });
  });
  return doc;
}
