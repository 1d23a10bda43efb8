// clone.ini may hold the passwords of the backed-up server and the metadata center and the storage keys: on a DB
// host shared with other accounts it should be readable by its owner only. Not an error (the seed's file was 0644),
// a warning at start-up.
import { readFileSync, statSync } from 'node:fs';
import { parseIni } from './ini.ts';

const SECRET_KEY = /password|secret|access_key|token/;

/** `[section] key` of every non-empty secret set in the file's text. */
export function secretKeysIn(text: string): string[] {
  const found: string[] = [];
  for (const [section, keys] of parseIni(text)) {
    for (const [key, entry] of keys) if (SECRET_KEY.test(key) && entry.value !== '') found.push(`[${section}] ${key}`);
  }
  return found;
}

/** The warning for a config file that holds secrets and that its group or others may read; undefined when fine. */
export function readableSecretsWarning(file: string): string | undefined {
  let mode: number;
  let secrets: string[];
  try {
    mode = statSync(file).mode & 0o777;
    secrets = secretKeysIn(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // loading the config reports an unreadable or malformed file
  }
  if (!(mode & 0o044) || !secrets.length) return undefined;
  const who = mode & 0o004 ? 'others' : 'its group';
  return `${file} is readable by ${who} (mode ${mode.toString(8).padStart(4, '0')}) and holds secrets (${secrets.join(', ')}): chmod 600 ${file}`;
}

/** Warnings for the [encryption] key files that their group or others may read (a key must be its owner's only). */
export function readableKeyFileWarnings(configFile: string): string[] {
  let files: string[];
  try {
    const section = parseIni(readFileSync(configFile, 'utf8')).get('encryption');
    files = [section?.get('key_file')?.value ?? '', ...(section?.get('key_files')?.value ?? '').split(',')].map((f) => f.trim()).filter(Boolean);
  } catch {
    return [];
  }
  const warnings: string[] = [];
  for (const file of files) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue; // loading the config reports a missing key file
    }
    if (mode & 0o077) warnings.push(`encryption key file ${file} can be read or written by ${mode & 0o007 ? 'others' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`);
  }
  return warnings;
}
