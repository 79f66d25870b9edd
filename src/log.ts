// The library's one logger: leveled lines on stderr, as docker's `--log-level` gives them.
// Library code calls `log.debug(...)` where a user chasing a problem wants to see what
// strata did (store opened, registry requests, layers applied); nothing prints below the
// level set with `setLogLevel` (default "info", so debug lines stay quiet unless asked for).

export const logLevels = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof logLevels)[number];

let threshold = logLevels.indexOf('info');
let sink: (line: string) => void = (line) => process.stderr.write(line);

export function isLogLevel(s: string): s is LogLevel {
  return (logLevels as readonly string[]).includes(s);
}

/** Lines below `level` are dropped; `write` replaces stderr as the destination when given. */
export function setLogLevel(level: LogLevel, write?: (line: string) => void): void {
  threshold = logLevels.indexOf(level);
  if (write) sink = write;
}

function emit(level: LogLevel, msg: string): void {
  if (logLevels.indexOf(level) < threshold) return;
  // docker's logrus text format: time="…" level=debug msg="…"
  sink(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}\n`);
}

export const log = {
  enabled: (level: LogLevel): boolean => logLevels.indexOf(level) >= threshold,
  debug: (msg: string): void => emit('debug', msg),
  info: (msg: string): void => emit('info', msg),
  warn: (msg: string): void => emit('warn', msg),
  error: (msg: string): void => emit('error', msg),
};
