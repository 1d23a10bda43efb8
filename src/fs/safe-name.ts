// Names that come from outside (object keys in a bucket, a metadata row's binlog file) and become one local file
// name: a name that could leave its directory is refused rather than cleaned up.

/** The name as a single path component; throws naming `source` (the object key) when it is not one. */
export function localFileName(name: string, source: string): string {
  const problem = nameProblem(name);
  if (problem) throw new Error(`object ${JSON.stringify(source)}: the file name ${JSON.stringify(name)} ${problem}; refusing to use it as a local file name`);
  return name;
}

function nameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (/[/\\]/.test(name)) return 'contains a path separator';
  if (name.includes('..')) return "contains '..'";
  if (name === '.') return "is '.'";
  return undefined;
}
