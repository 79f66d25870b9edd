// Go's text/tabwriter as docker's `table` formats configure it (minwidth 10, tabwidth 1,
// padding 3, pad with spaces, no flags): tab-terminated cells are aligned in column blocks,
// the text after a line's last tab is not part of any column, and a line with fewer cells
// ends the blocks of the columns it lacks.

/** Code points, as Go counts runes (a surrogate pair is one); a string iterator costs more per cell. */
function runeCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  // After a final newline Go holds an empty line with no cells; it prints nothing.
  if (lines.length > 0 && lines[lines.length - 1].length === 1 && lines[lines.length - 1][0] === '') lines[lines.length - 1] = [];
  const widths: number[] = [];
  const out: string[] = [];

  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      lines[i].forEach((cell, j) => {
        out.push(cell);
        if (j < widths.length) out.push(' '.repeat(Math.max(0, widths[j] - runeCount(cell))));
      });
      if (i + 1 < lines.length) out.push('\n');
    }
  };

  // Go's Writer.format: find each block of consecutive lines that have a cell in this column,
  // size the column over the block, and recurse into the next column within the block.
  const format = (start: number, line1: number): void => {
    let line0 = start;
    const column = widths.length;
    for (let th = line0; th < line1; th++) {
      if (column >= lines[th].length - 1) continue;
      writeLines(line0, th);
      line0 = th;
      let width = minwidth;
      for (; th < line1; th++) {
        const line = lines[th];
        if (column >= line.length - 1) break;
        width = Math.max(width, runeCount(line[column]) + padding);
      }
      widths.push(width);
      format(line0, th);
      widths.pop();
      line0 = th;
    }
    writeLines(line0, line1);
  };

  format(0, lines.length);
  return out.join('');
}
