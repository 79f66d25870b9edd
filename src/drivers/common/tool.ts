// Running the filesystem's own administration tools (btrfs, zfs, zpool) and turning their
// failures into one-line errors that say which command failed and what the tool said.
import { execFile } from 'node:child_process';

export class ToolError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

/** Run cmd with args and return its standard output; a non-zero exit rejects with a ToolError. */
export function runTool(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // C locale: callers match the tools' English messages ("does not exist").
    const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) {
        resolve(stdout);
        return;
      }
      const code = typeof err.code === 'number' ? err.code : null;
      const command = [cmd, ...args].join(' ');
      if (err.code === 'ENOENT') {
        reject(new ToolError(`${cmd}: command not found (is it installed and on PATH?)`, command, '', null));
        return;
      }
      const said = firstLine(stderr) || firstLine(stdout) || err.message;
      reject(new ToolError(`${command}: ${said}`, command, stderr, code));
    });
  });
}

/** True when cmd can be run at all (it exists and `args` exits 0). */
export async function toolWorks(cmd: string, args: string[]): Promise<boolean> {
  try {
    await runTool(cmd, args);
    return true;
  } catch {
    return false;
  }
}

function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}
