// Byte counts printed as Docker prints them (go-units): the CLI's tables and progress and the
// devicemapper driver's status rows use the same wording, so it is written once, at the bottom.

/** go-units HumanSizeWithPrecision: decimal units, 3 significant digits ("90.4MB") unless told. */
export function humanSize(bytes: number, digits = 3): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${formatG(v, digits)}${units[i]}`;
}

/** C's %.Ng: N significant digits, trailing zeros dropped, an exponent of two digits or more. */
function formatG(v: number, digits: number): string {
  if (v === 0) return '0';
  const [mantissa, exponent] = v.toPrecision(digits).split('e');
  const m = mantissa!.includes('.') ? mantissa!.replace(/\.?0+$/, '') : mantissa!;
  if (exponent === undefined) return m;
  const e = Number(exponent);
  return `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
}
